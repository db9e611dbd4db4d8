"""GET /demo/pipeline: a page to type a prompt and watch the agents make the video."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pipeline"])
PAGE = Path(__file__).resolve().parents[1] / "static" / "pipeline.html"


@router.get("/demo/pipeline", response_class=HTMLResponse, include_in_schema=False)
async def demo_page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})
