"""ISO 8601 UTC time strings, the one format every JSON answer uses."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Now as ``2026-01-01T12:00:00.000Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(seconds: float) -> str:
    """A Unix time as ``2026-01-01T12:00:00.000Z``, the way every JSON answer writes it."""
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def iso_or_none(seconds: float | None) -> str | None:
    return None if seconds is None else iso(seconds)


def to_seconds(value: float | int | str) -> float:
    """A time as stored, either a Unix time or an ISO 8601 string, as a Unix time."""
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
