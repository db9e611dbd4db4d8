"""``python -m backend.app.openapi_dump``: the document the TypeScript client is generated from."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.app.openapi_dump import openapi_document
from backend.app.settings import Settings


def test_dump_writes_the_document_the_service_serves(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    done = subprocess.run(
        [sys.executable, "-m", "backend.app.openapi_dump", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(target.read_text())
    assert document["openapi"].startswith("3.")
    assert "/api/sessions/{session_id}/events" in document["paths"]
    assert "/api/interview/start" in document["paths"]


async def test_dump_matches_the_served_document(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings())
    served = (await running.client.get("/openapi.json")).json()
    assert served == openapi_document()
