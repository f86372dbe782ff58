"""The limit of the submit API: a minimal Starlette endpoint that parses the JSON body and pushes it to Redis.

``uvicorn bench.api_limit:app`` serves ``POST /api/preview/`` as the project's
standalone server does; it answers 202 with a job id, like the real one.
"""

from __future__ import annotations

import json
import os
import uuid

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

client = aioredis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
#: The Redis list the limit pushes requests to.
QUEUE_KEY = "bench:api:requests"


async def submit(request: Request) -> JSONResponse:
    data = await request.json()
    job_id = data.get("jobId") or str(uuid.uuid4())
    await client.rpush(QUEUE_KEY, json.dumps(data))
    return JSONResponse({"jobId": job_id, "state": "queued"}, status_code=202)


app = Starlette(routes=[Mount("/api/preview", routes=[Route("/", submit, methods=["POST"])])])
