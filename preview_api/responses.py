"""The API's JSON responses.

Bodies are rendered with ``ensure_ascii``: error messages may quote what a
client sent (an unknown key, say), and a lone surrogate in it (``"\\ud800"`` is
valid JSON) cannot be encoded as UTF-8; escaped, it is valid JSON still.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


#: Headers on answers that describe a job's current state (never cached).
NO_STORE = {"Cache-Control": "no-store"}
