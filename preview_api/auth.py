"""Who may download an artifact: a bearer token or a signed URL.

- Neither ``PREVIEW_API_TOKEN`` nor ``PREVIEW_SIGNING_KEY`` set: downloads are
  off (403 ``downloads_disabled``).
- ``expires``/``signature`` in the query: the URL must be signed for this job
  and role and not expired (else 403), whatever the ``Authorization`` header says.
- Otherwise ``Authorization: Bearer <token>``: missing or of another scheme,
  401 with ``WWW-Authenticate``; a token that is not ``PREVIEW_API_TOKEN``
  (compared in constant time), 403.
"""

from __future__ import annotations

import enum
import hmac

from starlette.requests import Request

from preview_actors.settings import Settings

from . import signing
from .errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="preview-artifacts"'}


class Grant(enum.Enum):
    TOKEN = "token"
    SIGNED_URL = "signed_url"


def check_download(request: Request, settings: Settings, job_id: str, role: str) -> Grant:
    if settings.api_token is None and settings.signing_key is None:
        raise ApiError(
            403, "downloads_disabled", "artifact downloads are disabled: set PREVIEW_API_TOKEN or PREVIEW_SIGNING_KEY"
        )
    query = request.query_params
    if "expires" in query or "signature" in query:
        if settings.signing_key is None:
            raise ApiError(403, "invalid_signature", "signed URLs are not enabled (no PREVIEW_SIGNING_KEY)")
        signing.verify(settings.signing_key, job_id, role, query.getlist("expires"), query.getlist("signature"))
        return Grant.SIGNED_URL
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> or use a signed URL", headers=_CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    # Header values arrive as latin-1 text: compare their bytes, in constant time.
    if settings.api_token is None or not hmac.compare_digest(token.encode("latin-1"), settings.api_token.encode()):
        raise ApiError(403, "invalid_token", "the bearer token is not valid")
    return Grant.TOKEN
