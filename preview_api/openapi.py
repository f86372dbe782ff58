"""``GET /openapi.json``: the document in ``openapi.json`` beside this module, as deployed.

The file states the default limits; the served copy carries the configured
ones (``PREVIEW_MAX_*``) and ``servers`` pointing at where the sub-app is mounted.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from preview_actors.settings import Settings

from .responses import ApiJSONResponse
from .urls import absolute_url


def load_document() -> dict[str, Any]:
    """The document as shipped (defaults)."""
    document: dict[str, Any] = json.loads(resources.files(__package__).joinpath("openapi.json").read_text("utf-8"))
    return document


#: Operations that need the bearer token where the app requires it (``require_token``).
TOKEN_OPERATIONS = (("/", "post"), ("/{jobId}/status", "get"), ("/{jobId}", "delete"))


def document_for(settings: Settings, *, require_token: bool = False) -> dict[str, Any]:
    """The shipped document with ``settings``' limits in its request schemas.

    ``require_token``: the job routes' bearer token is required, not optional.
    """
    document = copy.deepcopy(load_document())
    if require_token:
        for path, method in TOKEN_OPERATIONS:
            document["paths"][path][method]["security"] = [{"bearerToken": []}]
    limits = settings.limits
    schemas = document["components"]["schemas"]
    schemas["Identifier"]["maxLength"] = limits.max_id_chars
    preview = schemas["PreviewRequest"]["properties"]
    preview["steps"]["maxItems"] = limits.max_steps
    preview["steps"]["description"] = (
        f"The chapter's steps, at most {limits.max_total_duration_ms} ms in total."
    )
    preview["assets"]["maxItems"] = limits.max_assets
    step = schemas["Step"]["properties"]
    step["durationMs"]["minimum"] = limits.min_step_duration_ms
    step["durationMs"]["maximum"] = limits.max_step_duration_ms
    step["title"]["maxLength"] = limits.max_title_chars
    step["text"]["maxLength"] = limits.max_text_chars
    size = schemas["OutputSize"]["properties"]
    size["width"].update(minimum=limits.min_side, maximum=limits.max_width)
    size["height"].update(minimum=limits.min_side, maximum=limits.max_height)
    size["fps"].update(minimum=limits.min_fps, maximum=limits.max_fps)
    body = document["paths"]["/"]["post"]["requestBody"]
    body["description"] = (
        f"At most {settings.max_body_bytes} bytes of UTF-8 JSON;"
        " Content-Type application/json or application/*+json."
    )
    return document


def openapi_route(settings: Settings, *, require_token: bool = False) -> Route:
    document = document_for(settings, require_token=require_token)

    async def openapi(request: Request) -> Response:
        served = {**document, "servers": [{"url": absolute_url(request, "")}]}
        return ApiJSONResponse(served)

    return Route("/openapi.json", openapi, methods=["GET"], name="openapi")
