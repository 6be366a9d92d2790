"""Alembic migrations; `migrations.runner.upgrade(url)` applies them (used by `longtasks migrate`)."""
