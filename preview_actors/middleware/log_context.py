"""Gives every log line a stage writes its job's context (requestId, jobId, stage, attempt)."""

from __future__ import annotations

import contextvars
from typing import Callable

import dramatiq
from dramatiq.middleware import Middleware

from .. import logs


class LogContext(Middleware):
    def __init__(self, stage_of: Callable[[str], str | None], log_format: str) -> None:
        self.stage_of = stage_of
        self.log_format = log_format
        self._tokens: dict[str, contextvars.Token[dict[str, object]]] = {}

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """In each worker process, format logs and add the context filter."""
        logs.install(self.log_format)

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        stage = self.stage_of(message.actor_name)
        if stage is None:
            return
        context = {
            "jobId": message.args[0] if message.args else None,
            "requestId": message.options.get("request_id"),
            "stage": stage,
            "attempt": message.options.get("retries", 0) + 1,
        }
        token = logs.log_context.set({k: v for k, v in context.items() if v is not None})
        self._tokens[message.message_id] = token

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        token = self._tokens.pop(message.message_id, None)
        if token is not None:
            logs.log_context.reset(token)

    after_skip_message = after_process_message
