"""Keeping secrets out of log lines and stored error messages.

:func:`redact` masks, in any text:

- the secrets registered with :func:`register_secrets` (the configured API
  token and signing key, the passwords of the broker and store URLs), in
  their literal and URL-encoded forms;
- credentials in URLs: ``redis://:pw@host`` → ``redis://:***@host``,
  ``amqp://user:pw@host`` → ``amqp://user:***@host``;
- ``Authorization`` header values and ``Bearer`` tokens;
- secret query parameters: signed-URL signatures (``signature=``,
  ``X-Amz-Signature=``…), tokens, keys and passwords.

:class:`RedactingFilter` applies it to every record a handler emits (message,
arguments, exception and stack text); :func:`preview_actors.logs.install`
puts it on every handler it configures.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from .settings import Settings

#: What a masked value is replaced by.
MASK = "***"
#: Shorter registered secrets are ignored: masking every "ab" would garble logs for no safety.
MIN_SECRET_CHARS = 4

_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<user>[^:/?#@\s]*):)(?P<secret>[^@/?#\s]+)(?=@)")
_AUTHORIZATION = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|digest|token)\s+)?)(?P<secret>[^\s\"',;}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?:[\w.-]*(?:signature|token|secret|password|api_?key)|sig|key|credential|x-amz-credential)=)"
    r"(?P<secret>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
_PATTERNS = (_URL_CREDENTIALS, _AUTHORIZATION, _BEARER, _SECRET_PARAMETER)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(*values: str | None) -> None:
    """Mask ``values`` (and their URL-encoded forms) wherever they appear from now on."""
    global _secrets, _secret_pattern
    forms = {form for value in values if value for form in (value, unquote(value)) if len(form) >= MIN_SECRET_CHARS}
    with _lock:
        if forms <= _secrets:
            return
        _secrets = _secrets | forms
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def register_secrets(settings: Settings) -> None:
    """Register what ``settings`` holds secret: the API token, the signing key, URL passwords."""
    register_secret(settings.api_token, settings.signing_key, *url_passwords((settings.broker_url, settings.store_url)))


def url_passwords(urls: Iterable[str]) -> list[str]:
    """The passwords (as written, possibly percent-encoded) of ``urls`` that carry one."""
    passwords = []
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            passwords.append(password)
    return passwords


def redact(text: str) -> str:
    """``text`` with registered secrets and credential-looking values masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for credential in _PATTERNS:
        text = credential.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    return match.group("head") + MASK


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, exception and stack text; never drops a record.

    The message is only rewritten (formatted, with ``args`` cleared) when it
    held something to mask, so other records keep their lazy arguments.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
