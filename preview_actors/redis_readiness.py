"""Does the Redis in use keep queued jobs? A start-up check that warns when not.

Production Redis for preview-worker should persist with AOF
(``appendonly yes``, ``appendfsync everysec``) and never evict keys
(``maxmemory-policy noeviction``): an evicting Redis drops queued messages
and job statuses under memory pressure, and one without persistence loses
them on restart. Managed services may forbid ``CONFIG GET``; then the check
says it could not tell.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: Policies under which Redis never deletes keys to make room.
SAFE_EVICTION_POLICIES = frozenset({"noeviction"})


def durability_warnings(client: Any) -> list[str]:
    """What about this Redis could lose queued jobs (empty when nothing)."""
    import redis

    try:
        config = {}
        for name in ("maxmemory-policy", "maxmemory", "appendonly", "save"):
            config.update({_text(k): _text(v) for k, v in client.config_get(name).items()})
    except redis.ResponseError as error:
        return [f"could not read the Redis configuration ({error}); check persistence and eviction by hand"]
    warnings = []
    policy = config.get("maxmemory-policy", "")
    if policy not in SAFE_EVICTION_POLICIES:
        warnings.append(
            f"maxmemory-policy is {policy!r}: Redis may evict queued jobs under memory pressure; set it to 'noeviction'"
        )
    if config.get("appendonly") != "yes":
        if config.get("save", "").strip():
            warnings.append("appendonly is off: jobs queued since the last RDB snapshot are lost if Redis restarts; enable AOF")
        else:
            warnings.append(
                "Redis persists nothing (appendonly no, save ''): every queued job is lost if it restarts; enable AOF"
            )
    return warnings


def warn_if_unsafe(client: Any, *, component: str) -> list[str]:
    """Log each durability warning for ``component`` (broker or job store); return them."""
    import redis

    try:
        warnings = durability_warnings(client)
    except redis.RedisError as error:
        logger.warning("Could not check the %s Redis: %s", component, error)
        return []
    for warning in warnings:
        logger.warning("The %s Redis is not safe for production: %s", component, warning)
    return warnings


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
