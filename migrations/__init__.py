"""Alembic migrations; `migrations.runner.upgrade(url)` applies them (`longtasks migrate`)."""
