"""Workflows: deterministic, ids in and counts out. One module per task type + the page loop."""
