"""The `longtasks` command line: run the pieces (dev, api, worker, temporal, sandbox, migrate),
issue tokens, and drive tasks over the REST API."""
