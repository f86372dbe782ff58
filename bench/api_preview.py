"""The project's submit API as the benchmark serves it: ``preview_api.create_app(settings)`` mounted at ``/api/preview``.

Settings come from the environment (the benchmark sets them), as in
``preview_api.asgi:app``; ``uvicorn bench.api_preview:app``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

import preview_api
from preview_actors.settings import Settings

app = Starlette(routes=[Mount("/api/preview", app=preview_api.create_app(Settings.from_env()))])
