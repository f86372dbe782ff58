"""Signed artifact URLs: an expiry time and an HMAC that bind a URL to one job and one role.

The signature is the lowercase hex HMAC-SHA256, keyed with
``PREVIEW_SIGNING_KEY`` (UTF-8), of the text ``"{jobId}\\n{role}\\n{expires}"``:
the lowercase job UUID, ``video`` or ``poster``, and the expiry as decimal
Unix seconds. The URL carries ``expires`` and ``signature`` as query
parameters, so any service holding the key can mint URLs too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from .errors import ApiError

#: How long a signed artifact URL stays valid, seconds.
SIGNED_URL_LIFETIME_S = 3600

_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def signature(key: str, job_id: str, role: str, expires: int) -> str:
    message = f"{job_id}\n{role}\n{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_query(
    key: str, job_id: str, role: str, *, now: float | None = None, lifetime_s: int = SIGNED_URL_LIFETIME_S
) -> dict[str, str]:
    """The query parameters (``expires``, ``signature``) of a URL valid for ``lifetime_s``."""
    expires = int(time.time() if now is None else now) + lifetime_s
    return {"expires": str(expires), "signature": signature(key, job_id, role, expires)}


def verify(key: str, job_id: str, role: str, expires: list[str], signatures: list[str], *, now: float | None = None) -> None:
    """Raise 403 unless exactly one ``expires`` and one ``signature`` sign (job_id, role) and are not past.

    A signature is checked before its expiry, so a tampered ``expires`` is
    refused as a bad signature, not as expired.
    """
    if len(expires) != 1 or len(signatures) != 1:
        raise _invalid("a signed URL needs exactly one 'expires' and one 'signature'")
    if not _EXPIRES.fullmatch(expires[0]) or not _SIGNATURE.fullmatch(signatures[0]):
        raise _invalid("malformed 'expires' or 'signature'")
    expected = signature(key, job_id, role, int(expires[0]))
    if not hmac.compare_digest(expected, signatures[0]):
        raise _invalid("the signature does not match this artifact")
    if int(expires[0]) < (time.time() if now is None else now):
        raise ApiError(403, "signature_expired", "this signed URL has expired; ask the status endpoint for a new one")


def _invalid(message: str) -> ApiError:
    return ApiError(403, "invalid_signature", message)
