"""The three actors of the pipeline: render → hash → finalize, and the cancellation event.

Their work is in :mod:`preview_actors.stages` (the event's in
:mod:`preview_actors.cancel`); here they are only declared,
so hosts can ``from preview_actors import render`` and send its messages.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Shutdown

from . import cancel, stages
from .errors import JobCancelled, PermanentJobError
from .runtime import current
from .settings import Settings

RENDER_QUEUE = "preview-render"
#: Hash and finalize share a queue apart from renders, so finishing a job
#: never waits behind the renders of others.
FINISH_QUEUE = "preview-finish"

#: Exceptions that are expected: logged without a traceback, never retried as
#: failures (a shutdown hands the message on; see middleware.retries).
EXPECTED = (PermanentJobError, Shutdown, JobCancelled)

#: Extra time the render actor's time limit allows beyond the renderer timeout, milliseconds.
TIME_LIMIT_SLACK_MS = 120_000


#: Dramatiq priorities: lower runs first among messages a worker holds, so
#: finishing a job goes before starting another render.
RENDER_PRIORITY = 10
FINISH_PRIORITY = 0


@dramatiq.actor(
    actor_name="preview_render", queue_name=RENDER_QUEUE, priority=RENDER_PRIORITY, notify_shutdown=True, throws=EXPECTED
)
def render(job_id: str) -> dict[str, Any]:
    return stages.render(current(), job_id)


@dramatiq.actor(actor_name="preview_hash", queue_name=FINISH_QUEUE, priority=FINISH_PRIORITY, throws=EXPECTED)
def hash_artifacts(job_id: str, rendered: dict[str, Any]) -> dict[str, Any]:
    return stages.hash_artifacts(current(), job_id, rendered)


@dramatiq.actor(actor_name="preview_finalize", queue_name=FINISH_QUEUE, priority=FINISH_PRIORITY, throws=EXPECTED)
def finalize(job_id: str, hashed: dict[str, Any]) -> None:
    stages.finalize(current(), job_id, hashed)


@dramatiq.actor(actor_name=cancel.CANCELLED_EVENT, queue_name=FINISH_QUEUE, priority=FINISH_PRIORITY)
def job_cancelled(job_id: str) -> None:
    """Sent by :func:`preview_actors.cancel.cancel_job`: the job is cancelled; the worker counts it."""
    cancel.count_cancelled(job_id)


ACTORS = (render, hash_artifacts, finalize, job_cancelled)


def bind(broker: dramatiq.Broker, settings: Settings) -> None:
    """Declare the actors on ``broker`` (when setup runs again) with options from ``settings``."""
    for actor in ACTORS:
        if actor.broker is not broker:
            actor.broker = broker
            broker.declare_actor(actor)
        actor.options["max_retries"] = settings.max_retries
    render.options["time_limit"] = int(settings.render_timeout_s * 1000) + TIME_LIMIT_SLACK_MS
