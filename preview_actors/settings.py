"""Settings, read once from the environment at start-up.

Every variable is documented in the README. An invalid value raises
:class:`~preview_actors.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import attrs

from .errors import ConfigError
from .limits import Limits

T = TypeVar("T")

LOG_FORMATS = ("json", "console")
BUILTIN_RENDERERS = ("ffmpeg", "mock")
#: Largest TCP port number.
MAX_PORT = 65535


@attrs.frozen
class Settings:
    """Everything preview-worker needs to know about its deployment."""

    #: Where the broker lives: redis://, amqp://, sqlite:///path or stub://.
    broker_url: str
    #: Where job statuses live; defaults to the broker's own server or file.
    store_url: str
    #: Root of artifacts, job folders and the default SQLite queue.
    data_dir: Path
    #: Renders at once across all workers of a deployment.
    max_concurrency: int = 4
    #: Unfinished jobs before submissions are refused with 429.
    queue_max: int = 1000
    #: ``ffmpeg``, ``mock`` or a command line (split like a shell would).
    renderer: str = "ffmpeg"
    #: Seconds a render attempt may take before its process group is killed.
    render_timeout_s: float = 600.0
    #: Retries of a failing stage before the job is dead-lettered.
    max_retries: int = 3
    #: Smallest and largest delay between retries, milliseconds (exponential, with jitter).
    retry_min_backoff_ms: int = 1_000
    retry_max_backoff_ms: int = 300_000
    #: Relative asset paths are resolved below this directory.
    asset_root: Path = Path(".")
    #: Hosts (lowercase, no port) from which http(s) assets may be downloaded.
    asset_allowed_hosts: frozenset[str] = frozenset()
    #: Bearer token for artifact downloads; None disables token access.
    api_token: str | None = attrs.field(default=None, repr=False)
    #: HMAC key for signed artifact URLs; None disables signed URLs.
    signing_key: str | None = attrs.field(default=None, repr=False)
    log_format: str = "json"
    #: Largest accepted POST body, bytes.
    max_body_bytes: int = 1_048_576
    #: TCP port on which a ``dramatiq preview_actors`` worker serves Prometheus ``/metrics``; 0 disables.
    metrics_port: int = 9191
    #: Address the worker's metrics server binds to.
    metrics_host: str = "127.0.0.1"
    limits: Limits = Limits()
    #: Seconds an unfinished job may go without a status change before the
    #: reconciliation looks for its message (see :mod:`preview_actors.reconcile`).
    reconcile_grace_s: float = 600.0
    #: Seconds between a worker's reconciliation passes; 0 disables them.
    reconcile_interval_s: float = 60.0
    #: Seconds without a status change after which a job whose message the broker
    #: cannot show (RabbitMQ) is re-enqueued anyway; 0 never does.
    reconcile_unknown_after_s: float = 86_400.0

    @property
    def renderer_command(self) -> list[str]:
        """The argv prefix that starts the renderer."""
        if self.renderer in BUILTIN_RENDERERS:
            return [sys.executable, "-m", f"renderers.{self.renderer}"]
        return shlex.split(self.renderer)

    @property
    def renderer_name(self) -> str:
        return self.renderer if self.renderer in BUILTIN_RENDERERS else "custom"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        read = _Reader(env)
        data_dir = Path(read.text("DATA_DIR", "./preview-data")).expanduser().resolve()
        broker_url = read.text("PREVIEW_BROKER_URL", f"sqlite:///{data_dir / 'queue.db'}")
        _check_url("PREVIEW_BROKER_URL", broker_url, ("redis", "rediss", "amqp", "amqps", "sqlite", "stub"))
        store_url = read.text("PREVIEW_STORE_URL", "") or _default_store_url(broker_url, data_dir)
        _check_url("PREVIEW_STORE_URL", store_url, ("redis", "rediss", "sqlite", "memory"))
        renderer = read.text("PREVIEW_RENDERER", "ffmpeg")
        if not renderer.strip():
            raise ConfigError("PREVIEW_RENDERER", "must be 'ffmpeg', 'mock' or a command")
        log_format = read.text("PREVIEW_LOG_FORMAT", "json").lower()
        if log_format not in LOG_FORMATS:
            raise ConfigError("PREVIEW_LOG_FORMAT", f"must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
        hosts = frozenset(
            host.strip().lower() for host in read.text("PREVIEW_ASSET_ALLOWED_HOSTS", "").split(",") if host.strip()
        )
        metrics_port = read.integer("PREVIEW_METRICS_PORT", 9191, minimum=0)
        if metrics_port > MAX_PORT:
            raise ConfigError("PREVIEW_METRICS_PORT", f"must be a TCP port (0 disables, at most {MAX_PORT}), not {metrics_port}")
        metrics_host = read.text("PREVIEW_METRICS_HOST", "127.0.0.1").strip()
        if not metrics_host:
            raise ConfigError("PREVIEW_METRICS_HOST", "must be an address to bind to, e.g. 127.0.0.1 or 0.0.0.0")
        min_backoff = read.integer("PREVIEW_RETRY_MIN_BACKOFF_MS", 1_000, minimum=0)
        max_backoff = read.integer("PREVIEW_RETRY_MAX_BACKOFF_MS", 300_000, minimum=0)
        if max_backoff < min_backoff:
            raise ConfigError("PREVIEW_RETRY_MAX_BACKOFF_MS", "must not be below PREVIEW_RETRY_MIN_BACKOFF_MS")
        defaults = Limits()
        limits = Limits(
            max_steps=read.integer("PREVIEW_MAX_STEPS", defaults.max_steps, minimum=1),
            max_step_duration_ms=read.integer("PREVIEW_MAX_STEP_DURATION_MS", defaults.max_step_duration_ms, minimum=100),
            max_total_duration_ms=read.integer("PREVIEW_MAX_TOTAL_DURATION_MS", defaults.max_total_duration_ms, minimum=100),
            max_text_chars=read.integer("PREVIEW_MAX_TEXT_CHARS", defaults.max_text_chars, minimum=1),
            max_assets=read.integer("PREVIEW_MAX_ASSETS", defaults.max_assets, minimum=1),
            max_width=read.integer("PREVIEW_MAX_WIDTH", defaults.max_width, minimum=16),
            max_height=read.integer("PREVIEW_MAX_HEIGHT", defaults.max_height, minimum=16),
        )
        grace_s, interval_s, unknown_after_s = _reconcile_settings(read)
        return cls(
            broker_url=broker_url,
            store_url=store_url,
            data_dir=data_dir,
            max_concurrency=read.integer("PREVIEW_MAX_CONCURRENCY", 4, minimum=1),
            queue_max=read.integer("PREVIEW_QUEUE_MAX", 1000, minimum=1),
            renderer=renderer,
            render_timeout_s=read.number("PREVIEW_RENDER_TIMEOUT_S", 600.0, minimum=0.1),
            max_retries=read.integer("PREVIEW_MAX_RETRIES", 3, minimum=0),
            retry_min_backoff_ms=min_backoff,
            retry_max_backoff_ms=max_backoff,
            asset_root=Path(read.text("PREVIEW_ASSET_ROOT", ".")).expanduser().resolve(),
            asset_allowed_hosts=hosts,
            api_token=read.text("PREVIEW_API_TOKEN", "") or None,
            signing_key=read.text("PREVIEW_SIGNING_KEY", "") or None,
            log_format=log_format,
            max_body_bytes=read.integer("PREVIEW_MAX_BODY_BYTES", 1_048_576, minimum=1024),
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            limits=limits,
            reconcile_grace_s=grace_s,
            reconcile_interval_s=interval_s,
            reconcile_unknown_after_s=unknown_after_s,
        )


def _reconcile_settings(read: _Reader) -> tuple[float, float, float]:
    """PREVIEW_RECONCILE_*: the grace period, the pass interval (0 disables) and the unknown-message age (0 never)."""
    grace_s = read.number("PREVIEW_RECONCILE_GRACE_S", 600.0, minimum=1.0)
    interval_s = read.number("PREVIEW_RECONCILE_INTERVAL_S", 60.0, minimum=0.0)
    if 0 < interval_s < 1:
        raise ConfigError("PREVIEW_RECONCILE_INTERVAL_S", f"must be 0 (disabled) or at least 1 second, not {interval_s:g}")
    unknown_after_s = read.number("PREVIEW_RECONCILE_UNKNOWN_AFTER_S", 86_400.0, minimum=0.0)
    if 0 < unknown_after_s < grace_s:
        raise ConfigError(
            "PREVIEW_RECONCILE_UNKNOWN_AFTER_S",
            f"must be 0 (never) or at least PREVIEW_RECONCILE_GRACE_S ({grace_s:g}), not {unknown_after_s:g}",
        )
    return grace_s, interval_s, unknown_after_s


def _default_store_url(broker_url: str, data_dir: Path) -> str:
    """The broker's own server or file; RabbitMQ keeps no state, so a SQLite file in DATA_DIR."""
    if broker_url.startswith("stub:"):
        return "memory://"
    if broker_url.startswith(("amqp:", "amqps:")):
        return f"sqlite:///{data_dir / 'jobs.db'}"
    return broker_url


def _check_url(variable: str, url: str, schemes: tuple[str, ...]) -> None:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in schemes:
        raise ConfigError(variable, f"must start with one of {', '.join(s + '://' for s in schemes)}; got {url!r}")


@attrs.frozen
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default)

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return self._parse(name, default, int, "an integer", minimum)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        return self._parse(name, default, float, "a number", minimum)

    def _parse(self, name: str, default: T, parse: Callable[[str], T], kind: str, minimum: float) -> T:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = parse(raw.strip())
        except ValueError:
            raise ConfigError(name, f"must be {kind}, not {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
            raise ConfigError(name, f"must be a finite number, not {raw!r}")
        if value < minimum:  # type: ignore[operator]  # T is int or float: parse is int or float
            raise ConfigError(name, f"must be at least {minimum}, not {raw!r}")
        return value
