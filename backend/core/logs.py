"""structlog configuration: JSON for machines, console for people, stdlib routed through it.

uvicorn's own loggers (and every other stdlib logger) are rendered by the same
processor chain, so `journalctl -u pipeline-backend` and CloudWatch see one format.
Every record is masked on its way out (:mod:`backend.core.redaction`): uvicorn logs
``WebSocket /ws/S?token=...`` lines, and no token, key or secret may reach a log.
"""

from __future__ import annotations

import logging
import sys

import structlog
import structlog.tracebacks

from backend.core.redaction import RedactingFilter, redact_event, redact_rendered
from backend.core.settings import CoreSettings, LogFormat


def _drop_color_message(
    _: object, __: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    event.pop("color_message", None)  # uvicorn's ANSI duplicate of the message
    return event


_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
    _drop_color_message,
]


def wants_json(settings: CoreSettings) -> bool:
    if settings.log_format is LogFormat.JSON:
        return True
    if settings.log_format is LogFormat.CONSOLE:
        return False
    return settings.is_production or not sys.stderr.isatty()


def configure_logging(settings: CoreSettings) -> None:
    """Idempotent: safe to call once per app built (tests build many)."""
    renderer: structlog.types.Processor
    if wants_json(settings):
        renderer = structlog.processors.JSONRenderer()
        final: list[structlog.types.Processor] = [
            # No frame locals: they would put tokens and request bodies into the logs.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            redact_event,
            renderer,
            redact_rendered,
        ]
    else:
        final = [
            structlog.processors.format_exc_info,  # as text, so it is masked too
            redact_event,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
            redact_rendered,
        ]

    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # uvicorn installs its own handlers; hand its records to the root handler instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
    # Our middleware logs one line per request; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("botocore", "boto3", "urllib3", "aioice", "aiortc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
