"""Secrets never reach a log line: masking applied to every record, whatever logged it.

Two entry points, one rule set:

- :class:`RedactingFilter`, on the root handler: stdlib records (uvicorn's
  ``WebSocket /ws/S?token=...`` line, websockets, httpx, botocore) have their message
  rendered and masked before any formatter sees them.
- :func:`redact_event`, a structlog processor: values under sensitive keys are masked
  whole, and every string value (the event, a traceback) is masked by pattern.

Masked: ``token=``/``api_key=``/``credential=``... query values, ``Authorization``,
``X-API-Key`` and ``X-Gateway-Secret`` header values, JWTs (three base64url parts whose
header starts ``eyJ``), this service's API keys (``pbk_...``) and passwords in URLs
(``redis://:secret@host``) wherever they appear.
Pure functions, no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "[REDACTED]"

SENSITIVE_KEYS = frozenset(
    {
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "api_key",
        "apikey",
        "x-api-key",
        "x_api_key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-gateway-secret",
        "x_gateway_secret",
        "credential",
        "password",
        "secret",
        "client_secret",
        "turn_secret",
        "auth_jwt_secret",
        "apigw_shared_secret",
        "webhook_secret",
        "openai_api_key",
    }
)

# A JWT (JWS or JWE): its header is base64url JSON, so it starts with "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*")
# This service's API keys (backend.core.api_keys.KEY_PREFIX).
_API_KEY = re.compile(r"pbk_[A-Za-z0-9_-]{16,}")
# key=value in query strings and log text: token=..., api_key=..., credential=...
_PARAM = re.compile(
    r"(?i)\b([\w-]*?(?:token|api_?key|credential|password|secret|signature))"
    r"=([^&\s\\\"',;}]+)"
)
# Header-like pairs in any quoting: Authorization: Bearer x, 'x-api-key': 'x', b'...'
_HEADER = re.compile(
    r"(?i)((?:proxy-)?authorization|x-api-key|x-gateway-secret|cookie)"
    r"(\\?[\"']?\s*[:=,]\s*b?\\?[\"']?)"
    r"((?:bearer|apikey|basic|token)\s+)?"
    r"([^\s\"'\\,}&]+)"
)


# A password in a URL: redis://:secret@host, https://user:secret@host
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/\s@\"']*:)([^@\s/\"']+)@", re.I)


def redact_text(text: str) -> str:
    """Every secret-looking part of ``text`` replaced by ``[REDACTED]``."""
    if not text:
        return text
    text = _JWT.sub(MASK, text)
    text = _API_KEY.sub(MASK, text)
    text = _PARAM.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """Strings masked by pattern, mappings by key too; bounded depth, other types as is."""
    if isinstance(value, str):
        return redact_text(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            key: MASK if _is_sensitive(key) else redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item, depth + 1) for item in value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", errors="replace"))
    return value


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SENSITIVE_KEYS


def redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys whole and secret patterns in every value."""
    for key, value in event.items():
        if key in ("exc_info", "stack_info"):
            continue  # rendered later; the rendered text is masked by redact_rendered
        if _is_sensitive(key) and value is not None:
            event[key] = MASK
        else:
            event[key] = redact_value(value)
    return event


def redact_rendered(_: Any, __: str, line: Any) -> Any:
    """The last processor: the rendered line, tracebacks included, masked once more."""
    if isinstance(line, bytes | bytearray):
        return redact_text(bytes(line).decode("utf-8", errors="replace")).encode()
    return redact_text(line) if isinstance(line, str) else line


class RedactingFilter(logging.Filter):
    """On a handler: renders a stdlib record's message, masks it, and drops the args."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str | bytes) or record.args:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a broken %-format: keep the raw parts
                message = f"{record.msg} {record.args!r}"
            record.msg = redact_text(message)
            record.args = None
        # A structlog event (a dict) is masked by redact_event in the formatter's chain.
        return True
