"""Database models, the engine factory and repositories (all SQL lives in `db.repositories`)."""
