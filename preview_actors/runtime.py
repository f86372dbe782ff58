"""The configured runtime: settings, broker, job store and artifact store.

``setup()`` builds them from settings (by default read from the environment),
makes the broker dramatiq's global broker and binds the pipeline's actors to
it. Importing :mod:`preview_actors` calls it once, which is what lets
``dramatiq preview_actors`` start a worker on whatever ``PREVIEW_BROKER_URL``
names. Nothing connects to a server until first used.
"""

from __future__ import annotations

import attrs
import dramatiq
from dramatiq.middleware import AgeLimit, Callbacks, ShutdownNotifications, TimeLimit

from . import metrics, redaction
from .brokers import create_broker
from .concurrency import RenderSlots, open_render_slots
from .extras import require_driver
from .middleware import JobStatus, LogContext, Metrics, Pipelines, Reconciliation, Retries, StartupChecks, WorkerIntake
from .server_paths import ServerPaths
from .settings import Settings
from .storage import ArtifactStore
from .store import JobStore, open_store

#: Actor name → stage name, for the middleware.
STAGES = {"preview_render": "render", "preview_hash": "hash", "preview_finalize": "finalize"}


#: Render messages a worker may hold per worker thread: renders are long, so a worker
#: never holds one it cannot start while another worker idles (preview-finish keeps
#: dramatiq's default, twice the threads). The queue is actors.RENDER_QUEUE.
RENDER_PREFETCH_PER_THREAD = {"preview-render": 1}


def stage_of(actor_name: str) -> str | None:
    return STAGES.get(actor_name)


@attrs.define(eq=False)  # one per setup(): compared and hashed by identity
class Runtime:
    settings: Settings
    broker: dramatiq.Broker
    store: JobStore
    artifacts: ArtifactStore
    render_slots: RenderSlots

    def close(self) -> None:
        self.broker.close()
        self.store.close()


_current: Runtime | None = None


def build_middleware(settings: Settings, store: JobStore) -> list[dramatiq.Middleware]:
    """Dramatiq's defaults, with our retries, status and log context in the right order.

    ``after_*`` hooks run in reverse: the time limit and shutdown
    notifications stop watching the thread first (so they can never raise
    into another middleware's hook), then Retries decides, Pipelines sends
    the next stage, Metrics counts the outcome, JobStatus records it and
    LogContext clears the context. WorkerIntake comes first: a stopping
    worker stops taking messages before its running actors are interrupted.
    """
    job_status = JobStatus(store, stage_of, ServerPaths.of(settings))
    return [
        WorkerIntake(RENDER_PREFETCH_PER_THREAD),
        AgeLimit(),
        Callbacks(),
        LogContext(stage_of, settings.log_format, settings=settings),
        StartupChecks(store, settings),
        Reconciliation(store, settings),
        job_status,
        Metrics(stage_of, host=settings.metrics_host, port=settings.metrics_port),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.retry_min_backoff_ms,
            max_backoff=settings.retry_max_backoff_ms,
            on_hand_back=job_status.handed_back,
        ),
        TimeLimit(),
        ShutdownNotifications(),
    ]


def setup(settings: Settings | None = None) -> Runtime:
    """Configure preview-worker (again): the previous runtime, if any, is closed."""
    global _current
    settings = Settings.from_env() if settings is None else settings
    redaction.register_secrets(settings)
    require_driver("PREVIEW_BROKER_URL", settings.broker_url)  # the broker's extra is named first
    require_driver("PREVIEW_STORE_URL", settings.store_url)
    store = open_store(settings.store_url)
    broker = create_broker(settings.broker_url, build_middleware(settings, store))
    dramatiq.set_broker(broker)
    from . import actors  # declared against the global broker just set

    actors.bind(broker, settings)
    render_slots = open_render_slots(
        settings.max_concurrency,
        redis_client=getattr(store, "client", None) or getattr(broker, "client", None),
        lock_dir=settings.data_dir / "locks",
    )
    runtime = Runtime(settings, broker, store, ArtifactStore(settings.data_dir), render_slots)
    previous, _current = _current, runtime
    metrics.JOB_STORE.watch(store)  # the gauges read at scrape follow the current runtime
    if previous is not None and previous.broker is not broker:
        previous.close()
    return _current


def current() -> Runtime:
    """The runtime set up last (importing preview_actors sets one up)."""
    if _current is None:
        return setup()
    return _current
