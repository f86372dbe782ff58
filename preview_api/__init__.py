"""preview_api: the Starlette sub-app to mount in a host backend.

    from preview_api import PreviewMount, create_app, metrics_app
    app.routes.append(PreviewMount("/api/preview", app=create_app()))
    app.add_route("/metrics", metrics_app())   # unless the host serves metrics already

(``PreviewMount`` is a Starlette ``Mount`` that also takes ``POST /api/preview``
without the trailing slash; a plain ``app.mount`` works, but the host answers
that bare path with a 307.)

``POST /`` submits a job, ``GET /{jobId}/status`` follows it,
``GET /{jobId}/artifact`` downloads its video or poster, ``/healthz`` and
``/readyz`` report health and ``/openapi.json`` describes it all.
"""

from .app import PreviewApp, create_app
from .context import Authorize
from .errors import ApiError
from .metrics import metrics_app
from .routing import PreviewMount
from .signing import SIGNED_URL_LIFETIME_S

__all__ = [
    # The app
    "create_app",
    "PreviewApp",
    "PreviewMount",
    "Authorize",
    "metrics_app",
    # Signed URLs
    "SIGNED_URL_LIFETIME_S",
    # Errors
    "ApiError",
]
