"""ISO 8601 UTC time strings, the one format every JSON answer uses."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Now as ``2026-01-01T12:00:00.000Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
