"""An ASGI response streaming a byte range of an already opened file, chunk by chunk.

Reads run in worker threads (``anyio`` async files), so the event loop never
waits for the disk, and no more than :data:`CHUNK_BYTES` are held at once.
The file is closed when the response ends, also when the client went away.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio
from anyio import AsyncFile
from starlette.datastructures import MutableHeaders
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

#: Bytes read from disk and sent per chunk.
CHUNK_BYTES = 64 * 1024


class FileSliceResponse:
    def __init__(
        self, file: AsyncFile[bytes], start: int, length: int, *, status_code: int, headers: Mapping[str, str]
    ) -> None:
        self.file = file
        self.start = start
        self.length = length
        self.status_code = status_code
        self.headers = MutableHeaders(headers=dict(headers))
        self.headers["Content-Length"] = str(length)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers.raw})
            if scope.get("method") == "HEAD" or self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await self.file.seek(self.start)
            remaining = self.length
            while remaining:
                chunk = await self.file.read(min(CHUNK_BYTES, remaining))
                if not chunk:
                    # Shorter than its record says: fail loudly (the connection ends), never pad.
                    raise RuntimeError(f"artifact file ended {remaining} bytes early")
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        except OSError as error:  # the client went away (uvicorn's ClientDisconnected is an OSError)
            logger.info("Artifact transfer stopped: %s", error)
        finally:
            with anyio.CancelScope(shield=True):
                await self.file.aclose()
