"""``GET /healthz`` (the process answers) and ``GET /readyz`` (its broker and job store answer).

The checks (:mod:`preview_actors.health`) block on the network or the disk,
so they run in the threadpool, both at once, each bounded to about two seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from preview_actors.errors import BrokerUnavailableError
from preview_actors.health import check_broker, check_store

from .context import ApiContext
from .responses import NO_STORE, ApiJSONResponse


def health_routes(context: ApiContext) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return ApiJSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: Request) -> Response:
        runtime = context.runtime
        checks: dict[str, dict[str, Any]] = {}

        async def run(component: str, check: Callable[[], None]) -> None:
            try:
                await run_in_threadpool(check)
            except BrokerUnavailableError as error:
                checks[component] = {"status": "unavailable", "reason": str(error)}
            else:
                checks[component] = {"status": "ok"}

        async with anyio.create_task_group() as group:
            group.start_soon(run, "broker", lambda: check_broker(runtime.broker))
            group.start_soon(run, "store", lambda: check_store(runtime.store))
        ordered = {component: checks[component] for component in ("broker", "store")}
        failures = [check["reason"] for check in ordered.values() if check["status"] != "ok"]
        if not failures:
            return ApiJSONResponse({"status": "ok", "checks": ordered}, headers=NO_STORE)
        body = {
            "status": "unavailable",
            "checks": ordered,
            "error": {"code": "unavailable", "message": "; ".join(failures)},
        }
        return ApiJSONResponse(body, status_code=503, headers=NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
    ]
