"""``create_app()``: the Starlette sub-app a host mounts (``PreviewMount("/api/preview", app=create_app())``)."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

import preview_actors
from preview_actors.errors import ConfigError, PreviewError
from preview_actors.settings import Settings

from .artifacts import artifact_route
from .cancel import cancel_route
from .context import ApiContext, Authorize
from .errors import handle_http_exception, handle_preview_error, handle_unexpected
from .health import health_routes
from .openapi import openapi_route
from .request_id import RequestIdMiddleware
from .routing import NotFound
from .status import status_route
from .submit import submit_route

logger = logging.getLogger(__name__)


class PreviewApp(Starlette):
    """A Starlette app whose request-id middleware wraps even Starlette's own 500 handling.

    User middleware sits inside ``ServerErrorMiddleware``; an answer that one
    sends (a 500) would otherwise go out without ``X-Request-ID`` and outside
    the log context.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None, *, authorize: Authorize | None = None, require_token: bool = False
) -> PreviewApp:
    """The preview API, with routes relative to where it is mounted.

    ``settings=None`` uses the runtime set up from the environment
    (:func:`preview_actors.current`); given settings are applied with
    :func:`preview_actors.setup`. The app keeps that runtime for its life.
    ``authorize(request, project_id) -> bool`` (sync or async) is the host's
    access rule; see :mod:`preview_api.context` for when it is asked.
    ``require_token=True`` makes submit, status and cancel need
    ``Authorization: Bearer PREVIEW_API_TOKEN`` too, as the standalone server
    does; it raises :class:`~preview_actors.errors.ConfigError` when no token is set.

    Mount it with :class:`~preview_api.PreviewMount` so that the bare mount
    path (``POST /api/preview``) reaches it too.
    """
    runtime = preview_actors.current() if settings is None else preview_actors.setup(settings)
    if require_token and runtime.settings.api_token is None:
        raise ConfigError("PREVIEW_API_TOKEN", "must be set when the API requires the token (require_token=True)")
    context = ApiContext(runtime=runtime, authorize=authorize, require_token=require_token)
    if runtime.settings.api_token is None and runtime.settings.signing_key is None:
        logger.warning(
            "Artifact downloads are disabled: set PREVIEW_API_TOKEN or PREVIEW_SIGNING_KEY to enable them."
        )
    app = PreviewApp(
        routes=[
            submit_route(context),
            status_route(context),
            cancel_route(context),
            artifact_route(context),
            *health_routes(context),
            openapi_route(runtime.settings, require_token=require_token),
        ],
        exception_handlers={
            HTTPException: handle_http_exception,
            PreviewError: handle_preview_error,
            Exception: handle_unexpected,
        },
    )
    # "/healthz/" is a 404 like any unknown path, not a redirect without a JSON body.
    app.router.redirect_slashes = False
    app.router.default = NotFound(app.router.routes)
    app.state.runtime = runtime
    return app
