"""Request ids: taken from ``X-Request-ID`` when valid, else generated; echoed on every answer.

A pure ASGI middleware (no ``BaseHTTPMiddleware``: the id travels in the
contextvar :data:`preview_actors.logs.log_context`, which a middleware running
the endpoint in another task would lose). An endpoint may replace the id (a
job request's own ``requestId`` wins over the header) with
:func:`set_request_id`; the answer carries the id current when its headers go out.

Nested in itself (the standalone server wraps its mount of the sub-app), the
inner middleware finds the id already in the scope and leaves it to the outer one.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preview_actors import logs
from preview_actors.request import MAX_REQUEST_ID_CHARS

HEADER = "X-Request-ID"
#: Where the id lives in the ASGI scope's ``state`` (what ``request.state`` reads).
STATE_KEY = "preview_request_id"
#: Printable ASCII without spaces, as a job request's ``requestId``.
_VALID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID_CHARS}}}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    return _VALID.fullmatch(value) is not None


def get_request_id(request: Request) -> str:
    return str(request.scope["state"][STATE_KEY])


def set_request_id(request: Request, request_id: str) -> None:
    request.scope["state"][STATE_KEY] = request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or STATE_KEY in scope.get("state", {}):
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(HEADER)
        request_id = incoming if incoming is not None and is_valid_request_id(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state[STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[HEADER] = str(state[STATE_KEY])
            await send(message)

        with logs.bound(requestId=request_id):
            await self.app(scope, receive, send_with_id)
