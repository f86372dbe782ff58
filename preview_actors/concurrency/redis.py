"""Render slots as renewed leases in a Redis sorted set (many machines)."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import redis

from ..errors import BrokerUnavailableError
from . import RenderSlots, Slot

logger = logging.getLogger(__name__)

_SCRIPTS = Path(__file__).parent

#: How long a slot stays taken without renewal (a dead worker's slot frees after this), milliseconds.
LEASE_MS = 15_000
#: A held slot is renewed this many times per lease.
RENEWALS_PER_LEASE = 3


class RedisRenderSlots(RenderSlots):
    key = "preview:render-slots"

    def __init__(self, client: redis.Redis, limit: int, *, lease_ms: int = LEASE_MS) -> None:
        super().__init__(limit)
        self.client = client
        self.lease_ms = lease_ms
        self._acquire = client.register_script((_SCRIPTS / "acquire.lua").read_text())
        self._renew = client.register_script((_SCRIPTS / "renew.lua").read_text())

    def try_acquire(self) -> Slot | None:
        holder = uuid.uuid4().hex
        try:
            taken = self._acquire(keys=[self.key], args=[self.lease_ms, self.limit, holder])
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BrokerUnavailableError(f"render slots (redis) unreachable: {error}") from None
        return _LeasedSlot(self, holder) if int(taken) else None

    def held(self) -> int:
        """How many slots are held now (expired leases included until the next acquire)."""
        return int(self.client.zcard(self.key))


class _LeasedSlot(Slot):
    def __init__(self, slots: RedisRenderSlots, holder: str) -> None:
        self.slots = slots
        self.holder = holder
        self._released = threading.Event()
        self._renewer = threading.Thread(target=self._keep_alive, name="render-slot-renewer", daemon=True)
        self._renewer.start()

    def _keep_alive(self) -> None:
        while not self._released.wait(self.slots.lease_ms / RENEWALS_PER_LEASE / 1000):
            try:
                renewed = int(self.slots._renew(keys=[self.slots.key], args=[self.slots.lease_ms, self.holder]))
            except redis.RedisError as error:
                logger.warning("Could not renew a render slot: %s", error)
                continue
            if not renewed:
                logger.warning("A render slot lease expired before it was renewed; concurrency may exceed the limit.")
                return

    def release(self) -> None:
        if self._released.is_set():
            return
        self._released.set()
        try:
            self.slots.client.zrem(self.slots.key, self.holder)
        except redis.RedisError as error:
            logger.warning("Could not release a render slot (it expires by itself): %s", error)
