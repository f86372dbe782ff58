"""Dramatiq's Pipelines, with the next stage enqueued durably (see :mod:`.durable`)."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Pipelines as DramatiqPipelines

from .durable import enqueue_durably


class Pipelines(DramatiqPipelines):
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None or message.failed:
            return
        target = message.options.get("pipe_target")
        if target is None:
            return
        actor = broker.get_actor(message.actor_name)
        next_message: dramatiq.Message[Any] = dramatiq.Message(**target)
        if not (next_message.options.get("pipe_ignore") or actor.options.get("pipe_ignore")):
            next_message = next_message.copy(args=(*next_message.args, result))
        enqueue_durably(broker, next_message, delay=next_message.options.get("delay"))
