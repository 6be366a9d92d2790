-- Temporal keeps its own databases beside the application's, on the same Postgres server.
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
