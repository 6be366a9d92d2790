"""Print the API's OpenAPI spec as JSON, built from the app factory (no server, no database):
`python -m devtools.openapi > spec.json`. `make web-types` turns it into web/src/api/schema.ts,
and `make test` fails when the committed types and this spec differ."""

from __future__ import annotations

import json
import sys

from api.app import create_app
from longtasks.settings import Settings


def spec_json() -> str:
    spec = create_app(Settings()).openapi()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(spec_json())
