"""The one rule for a ``seq`` a client sends (``last_seq``, ``after``): 0 <= n < 2^63.

Redis stream ids are unsigned 64-bit, and a number past them makes XRANGE fail inside
the store, long after the request was accepted; so every edge (WebSocket query, frames,
API Gateway CONNECT, REST) checks its numbers here, before anything is looked up.
"""

from __future__ import annotations

from backend.core.errors import InvalidInput

SEQ_LIMIT = 2**63  # exclusive
MAX_SEQ = SEQ_LIMIT - 1
_MAX_DIGITS = len(str(MAX_SEQ))
MESSAGE = f"last_seq is an integer from 0 to {MAX_SEQ}"


class InvalidSeq(InvalidInput):
    code = "invalid_last_seq"


def seq_from_json(value: object) -> int:
    """A JSON number (never a bool or a string) within the bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEQ_LIMIT:
        raise InvalidSeq(MESSAGE)
    return value


def seq_from_query(raw: str | None) -> int | None:
    """A query parameter: absent or empty is None; otherwise ASCII digits within the bounds."""
    if not raw:
        return None
    if len(raw) > _MAX_DIGITS or not (raw.isascii() and raw.isdigit()):
        raise InvalidSeq(MESSAGE)
    return seq_from_json(int(raw))
