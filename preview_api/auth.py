"""Who may call: the bearer token (``PREVIEW_API_TOKEN``) and signed artifact URLs.

Downloads (:func:`check_download`):

- Neither ``PREVIEW_API_TOKEN`` nor ``PREVIEW_SIGNING_KEY`` set: downloads are
  off (403 ``downloads_disabled``).
- ``expires``/``signature`` in the query: the URL must be signed for this job
  and role and not expired (else 403), whatever the ``Authorization`` header says.
- Otherwise the bearer token, as :func:`check_bearer`.

Job routes (submit, status, cancel) ask for the token only where the app was
created with ``require_token=True`` (the standalone server, with
``PREVIEW_API_TOKEN`` set); a host that mounts the sub-app decides with its
``authorize`` hook instead. :func:`check_bearer`: ``Authorization: Bearer
<token>`` missing or of another scheme, 401 with ``WWW-Authenticate``; a token
that is not ``PREVIEW_API_TOKEN`` (compared in constant time), 403.
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
    check_bearer(request, settings.api_token, missing="send Authorization: Bearer <token> or use a signed URL")
    return Grant.TOKEN


def check_bearer(request: Request, api_token: str | None, *, missing: str = "send Authorization: Bearer <token>") -> None:
    """Raise 401 (with a challenge) without a bearer token, 403 unless it is ``api_token``.

    ``api_token=None`` (no token configured) refuses every token. ``missing``
    is the message of the 401 for a request without ``Authorization``.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, "unauthorized", missing, headers=_CHALLENGE)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    # Header values arrive as latin-1 text: compare their bytes, in constant time.
    if api_token is None or not hmac.compare_digest(token.encode("latin-1"), api_token.encode()):
        raise ApiError(403, "invalid_token", "the bearer token is not valid")
