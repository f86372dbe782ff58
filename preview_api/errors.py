"""HTTP errors: the one place where errors become answers.

Endpoints raise :class:`ApiError` or let a domain error
(:class:`~preview_actors.errors.PreviewError`) through; the exception handlers
installed by :func:`preview_api.create_app` turn them, Starlette's own
``HTTPException`` (404, 405) and anything unexpected (500) into the one error
body: ``{"error": {"code", "message", "field"?, "errors"?}}``.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from preview_actors.errors import (
    BrokerUnavailableError,
    JobConflictError,
    JobNotFoundError,
    PreviewError,
    QueueFullError,
    ValidationError,
)

from .responses import ApiJSONResponse

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait (Retry-After) when the broker or store is down.
UNAVAILABLE_RETRY_AFTER_S = 5
#: Field errors listed in one 422 body; the rest are left out.
MAX_FIELD_ERRORS = 50
#: Longest text quoted from a request in an error body (a field path or a message), characters.
MAX_QUOTED_CHARS = 300


class ApiError(PreviewError):
    """An HTTP answer other than success, raised by an endpoint and rendered at the edge."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        #: More members of the ``error`` object (``errors`` of a 422).
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": _quoted(self.message)}
        if self.field is not None:  # "" names the body itself
            error["field"] = _quoted(self.field)
        error.update(self.extra)
        return {"error": error}

    def response(self) -> Response:
        return ApiJSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


def api_error_for(error: PreviewError) -> ApiError:
    """The HTTP answer to a domain error."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ValidationError):
        errors = [{"field": _quoted(e.field), "message": _quoted(e.message)} for e in error.errors[:MAX_FIELD_ERRORS]]
        message = error.message if len(error.errors) == 1 else f"{error.message} (and {len(error.errors) - 1} more)"
        return ApiError(422, "invalid_request", message, field=error.field, extra={"errors": errors})
    if isinstance(error, JobConflictError):
        return ApiError(
            409, "job_conflict", f"job {error.job_id} exists with a different request", field="jobId"
        )
    if isinstance(error, JobNotFoundError):
        return ApiError(404, "job_not_found", f"no job {error.job_id}")
    if isinstance(error, QueueFullError):
        return ApiError(
            429,
            "queue_full",
            f"too many unfinished jobs ({error.unfinished}, limit {error.limit}); try again later",
            headers={"Retry-After": str(error.retry_after_s)},
        )
    if isinstance(error, BrokerUnavailableError):
        return ApiError(
            503, "unavailable", str(error), headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)}
        )
    logger.error("Unexpected %s at the HTTP edge: %s", type(error).__name__, error)
    return ApiError(500, "internal_error", "internal error")


def http_error_code(status_code: int) -> str:
    """``not_found``, ``method_not_allowed``… for Starlette's own HTTP errors."""
    try:
        return http.HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def handle_preview_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, PreviewError):  # pragma: no cover - registered for PreviewError only
        raise exc
    return api_error_for(exc).response()


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=headers)
    message = exc.detail
    if exc.status_code == 405 and "Allow" in headers:
        allowed = sorted((method.strip() for method in headers["Allow"].split(",")), key=_method_order)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    return ApiError(exc.status_code, http_error_code(exc.status_code), message, headers=headers).response()


#: The order ``Allow`` lists methods in (Starlette keeps them in a set).
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _method_order(method: str) -> tuple[int, str]:
    return (_METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER), method)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Anything else: logged with the request's context, answered 500 without details."""
    logger.error("Unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return ApiError(500, "internal_error", "internal error").response()


def _quoted(text: str) -> str:
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"
