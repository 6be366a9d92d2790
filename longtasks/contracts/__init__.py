"""What crosses Temporal: workflow inputs and results, activity arguments and results.

Only ids, cursors, counts and timestamps, never recipient lists, phone numbers, message text or
mail content (payload and history limits, and no personal data in Temporal's history). Plain
dataclasses with no I/O imports, so workflow code can import them freely.
"""
