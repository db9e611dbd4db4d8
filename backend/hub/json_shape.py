"""What any client's JSON may be before the hub stores or relays it. Pure.

Python's ``json`` accepts more than other clients can read back: ``NaN`` and
``Infinity`` (``JSON.parse`` rejects the frame), lone surrogates from ``"\\ud800"``
escapes (the frame cannot even be encoded as UTF-8, so the send to every member of the
room fails), and nesting deep enough to exhaust a recursive encoder's stack. A value
that passes :func:`json_problem` serialises to JSON every client parses.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32  # arrays and objects


def json_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """None when ``value`` is plain JSON within ``max_depth``; else what is wrong."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _valid_text(item):
                return "strings must be valid Unicode (no lone surrogates)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite (no NaN or Infinity)"
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
