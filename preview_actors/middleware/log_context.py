"""Gives every log line a stage writes its job's context (requestId, jobId, stage, attempt).

In each process ``dramatiq preview_actors`` starts, it also makes the
configured format and the redacting filter win over the handlers dramatiq's
command line installed (at process boot, and again once the worker has
started, after any other module was imported), and logs which broker, store
and data directory the process works on, credentials masked.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from .. import logs
from ..redaction import redact
from ..settings import Settings

logger = logging.getLogger(__name__)


class LogContext(Middleware):
    def __init__(self, stage_of: Callable[[str], str | None], log_format: str, *, settings: Settings | None = None) -> None:
        self.stage_of = stage_of
        self.log_format = log_format
        #: Described in the boot line of each worker process, when given.
        self.settings = settings
        #: Per worker thread: message id → the token of the context set for it. A context
        #: can only be reset in the context (the thread) that set it, and one message id
        #: can run on two threads at once (a broker redelivering a message whose channel
        #: closed under it), so tokens are never shared between threads.
        self._local = threading.local()
        self._booted = False

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """In each worker process, format logs and add the context and redacting filters."""
        self._booted = True
        logs.install(self.log_format)
        if self.settings is not None:
            settings = self.settings
            logger.info(
                "Worker process %d on broker %s, job store %s, DATA_DIR %s, renderer %s.",
                os.getpid(), redact(settings.broker_url), redact(settings.store_url), settings.data_dir, settings.renderer_name,
            )  # fmt: skip

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Install again in a worker process: a module imported after boot may have reconfigured logging."""
        if self._booted:
            logs.install(self.log_format)

    def _thread_tokens(self) -> dict[str, contextvars.Token[Mapping[str, Any]]]:
        tokens: dict[str, contextvars.Token[Mapping[str, Any]]] | None = getattr(self._local, "tokens", None)
        if tokens is None:
            tokens = self._local.tokens = {}
        return tokens

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        tokens = self._thread_tokens()
        if tokens:  # an after hook ran elsewhere: start this message from a clean context
            for token in reversed(list(tokens.values())):
                logs.log_context.reset(token)
            tokens.clear()
        stage = self.stage_of(message.actor_name)
        if stage is None:
            return
        context = {
            "jobId": message.args[0] if message.args else None,
            "requestId": message.options.get("request_id"),
            "stage": stage,
            "attempt": message.options.get("retries", 0) + 1,
        }
        tokens[message.message_id] = logs.log_context.set({k: v for k, v in context.items() if v is not None})

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        """Reset the context this thread set for ``message``; on any other thread there is none to reset."""
        token = self._thread_tokens().pop(message.message_id, None)
        if token is not None:
            logs.log_context.reset(token)

    after_skip_message = after_process_message
