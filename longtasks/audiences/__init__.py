"""Audiences: customer lists uploaded as CSV, normalized by the import task, sent to by
broadcasts. This package holds the pure parts (the streaming CSV intake, row normalization);
the tables are `db.repositories.audiences`."""
