"""Print the service's OpenAPI document: ``python -m backend.app.openapi_dump [PATH]``.

The TypeScript client generates its REST types from this (``npm run generate`` in
``clients/typescript``). The document depends on the code, not on the environment, so
it is built from default settings with no ``.env`` read and nothing started.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from backend.app.main import create_app
from backend.app.settings import Settings


def openapi_document() -> dict[str, Any]:
    settings = Settings(_env_file=None)
    return create_app(settings).openapi()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
