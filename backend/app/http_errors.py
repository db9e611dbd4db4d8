"""The contract's error envelope for every 4xx and 5xx answer.

``{"error": {"code": "<snake_case>", "message": "<human text>"}}``: validation errors,
404s, domain errors and unhandled exceptions alike. Internals never reach the client.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.core import errors

log = structlog.get_logger(__name__)

_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.LimitExceeded: 429,
    errors.Unavailable: 503,
    errors.UpstreamFailed: 502,
}


def status_for(exc: errors.DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 500


def envelope(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update(extra)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    headers = None
    if isinstance(exc, errors.LimitExceeded | errors.Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, errors.Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return envelope(status_for(exc), exc.code, exc.message, headers)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = "no such resource"
    return envelope(
        exc.status_code,
        _code_for_status(exc.status_code),
        message,
        dict(exc.headers) if exc.headers else None,
    )


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return envelope(422, "validation_error", summary or "invalid request", details=details)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_exception", path=request.url.path, exc_info=exc)
    return envelope(500, "internal_error", "the server failed to handle this request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unhandled)
    _document_the_envelope(app)


# -- the envelope in the OpenAPI document ----------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(examples=["prompt"])
    message: str = Field(examples=["String should have at least 1 character"])


class ErrorBody(BaseModel):
    code: str = Field(examples=["session_not_found"], description="snake_case, stable")
    message: str = Field(examples=["no such session"], description="for humans")
    details: list[FieldProblem] | None = Field(
        default=None, description="422 only: each field that failed validation"
    )


class ErrorEnvelope(BaseModel):
    """Every 4xx and 5xx answer of the REST API."""

    error: ErrorBody


_MEANING = {
    400: "Bad input (the code names the problem)",
    401: "No valid credentials (auth is on): a missing, expired or forged token",
    403: "Credentials are valid but not for this resource or action",
    404: "No such resource",
    409: "Conflicts with the resource's current state",
    413: "The body or one of its parts is over its size limit",
    422: "The request does not match its schema (details lists each field)",
    429: "Too many requests: retry after Retry-After seconds",
    500: "The server failed; the body never carries internals",
    502: "A dependency answered wrongly (TURN, a provider)",
    503: "A dependency (Redis, capacity, a provider) cannot serve now: retry after Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status with the envelope's schema."""
    return {
        status: {"model": ErrorEnvelope, "description": _MEANING[status]} for status in statuses
    }


def _document_the_envelope(app: FastAPI) -> None:
    """Every operation's 422 (FastAPI's own ``{"detail"}`` by default) and 500 answer with
    the envelope, as they do at run time."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        defs = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components["ErrorEnvelope"] = defs
        envelope_ref = {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                documented = {"500"}
                if "422" in responses:  # FastAPI found parameters or a body to validate
                    documented.add("422")
                if "requestBody" in operation and "400" not in responses:
                    documented.add("400")  # a body that is not JSON at all
                for status in documented:
                    responses[status] = {
                        "description": _MEANING[int(status)],
                        "content": envelope_ref,
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
