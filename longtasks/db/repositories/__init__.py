"""All SQL. Functions take an `AsyncConnection`; the caller (a request, an activity) commits."""
