"""longtasks' ground floor: settings, the domain's enums, the database (models, repositories),
the Temporal client, workflow contracts, provider adapters, notifications, observability,
receipt parsing and phone numbers.

Nothing here imports `api`, `workflows`, `activities`, `worker` or `cli`: they stand on it.
Keep this module free of imports, so workflow code can import contracts cheaply.
"""
