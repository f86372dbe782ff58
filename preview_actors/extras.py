"""Install extras: the driver a broker or store URL needs, and a clear error when it is missing.

``pip install preview-worker`` brings the SQLite broker and job store only.
``redis://`` URLs need the ``redis`` extra (the redis client), ``amqp://``
URLs the ``rabbitmq`` extra (pika). :func:`require_driver` checks a URL
before anything is built on it, so a missing driver is one
:class:`MissingExtraError` naming the variable and the ``pip install`` that
fixes it, rather than a ``ModuleNotFoundError`` from deep inside an import.
Drivers are imported only for the URLs that need them: a SQLite deployment
never imports redis or pika.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .errors import ConfigError

__all__ = ["EXTRAS", "MissingExtraError", "require_driver"]

#: URL scheme → (the extra to install, the driver modules it brings).
EXTRAS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "redis": ("redis", ("redis",)),
    "rediss": ("redis", ("redis",)),
    "amqp": ("rabbitmq", ("pika",)),
    "amqps": ("rabbitmq", ("pika",)),
}


class MissingExtraError(ConfigError):
    """``variable`` names a ``scheme://`` URL whose driver, the install extra ``extra``, is not installed."""

    def __init__(self, variable: str, scheme: str, extra: str) -> None:
        super().__init__(variable, f"{scheme}:// needs the '{extra}' extra: pip install 'preview-worker[{extra}]'")
        self.scheme = scheme
        self.extra = extra


def require_driver(variable: str, url: str) -> None:
    """Import the driver ``url`` needs, if any.

    Raises :class:`MissingExtraError` (naming ``variable``) when the driver
    itself is not installed. A driver that is installed but fails to import
    (one of its own dependencies missing) raises its own error unchanged.
    """
    scheme = url.partition("://")[0]
    if scheme not in EXTRAS:
        return
    extra, modules = EXTRAS[scheme]
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is None or error.name.partition(".")[0] != module:
                raise
            raise MissingExtraError(variable, scheme, extra) from None
