"""`make bench`: every scenario against the real stack, side by side with its baselines."""
