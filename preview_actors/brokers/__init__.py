"""Brokers chosen by URL. Each driver is imported only when its URL is used,
so a SQLite deployment never imports redis or pika.

Every broker built here (dramatiq's, subclassed; SQLite, this package's own)
has the same delivery semantics: an ack, nack or requeue settles only the
delivery it is given, a stopping worker takes no new message, and an
:class:`~.intake.Intake` caps prefetch per queue (see
:class:`~preview_actors.middleware.intake.WorkerIntake`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import dramatiq
from dramatiq.middleware import Middleware

from ..errors import ConfigError


def connection_errors() -> tuple[type[BaseException], ...]:
    """What brokers raise when their server is away; drivers that were never imported are not asked."""
    errors: list[type[BaseException]] = [dramatiq.errors.BrokerConnectionError, OSError]
    redis = sys.modules.get("redis")
    if redis is not None:
        errors += [redis.ConnectionError, redis.TimeoutError]
    pika_exceptions = sys.modules.get("pika.exceptions")
    if pika_exceptions is not None:
        errors.append(pika_exceptions.AMQPError)
    return tuple(errors)


def create_broker(url: str, middleware: Sequence[Middleware]) -> dramatiq.Broker:
    """Build the broker named by ``url`` with exactly ``middleware``.

    No connection is made here; drivers connect on first use.
    """
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        try:
            from .redis import RedisBroker
        except ImportError:
            raise ConfigError(
                "PREVIEW_BROKER_URL", "redis:// needs the 'redis' extra: pip install 'preview-worker[redis]'"
            ) from None
        return RedisBroker(url=url, middleware=list(middleware))
    if scheme in ("amqp", "amqps"):
        try:
            from .rabbitmq import RabbitmqBroker
        except ImportError:
            raise ConfigError(
                "PREVIEW_BROKER_URL", "amqp:// needs the 'rabbitmq' extra: pip install 'preview-worker[rabbitmq]'"
            ) from None
        return RabbitmqBroker(url=url, middleware=list(middleware), confirm_delivery=True)
    if scheme == "sqlite":
        from .sqlite import SQLiteBroker, path_from_url

        try:
            path = path_from_url(url)
        except ValueError as error:
            raise ConfigError("PREVIEW_BROKER_URL", str(error)) from None
        return SQLiteBroker(path, middleware=list(middleware))
    if scheme == "stub":
        from .stub import StubBroker

        return StubBroker(middleware=list(middleware))
    raise ConfigError("PREVIEW_BROKER_URL", f"unsupported scheme {scheme!r}")
