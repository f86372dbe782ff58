"""Submit a chapter to the preview API, follow it, download the video and check its sha256.

    python examples/submit_and_download.py http://127.0.0.1:8000/api/preview/ examples/chapter.json \
        --token "$PREVIEW_API_TOKEN" --request-id tour-1

URL is where the API is mounted. CHAPTER.json is a job request as POSTed (a
bare previewRequest is wrapped); its relative asset URIs are resolved by the
worker below its PREVIEW_ASSET_ROOT, so for examples/chapter.json the workers
need PREVIEW_ASSET_ROOT=/path/to/checkout/examples (see the README's "Use it").
The request id (--request-id, sent as X-Request-ID) is on every log line of
the job; the server makes one up when it is not given. The video is downloaded
with the signed URL from the status when the server signs URLs, else with the
bearer token, and saved as JOBID.mp4 (or --out). Exit status: 0 downloaded and
verified, 1 the job failed or the download does not match, 2 the request was
refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

#: Seconds between status polls.
POLL_INTERVAL_S = 0.5
#: Bytes per chunk written while downloading.
CHUNK_BYTES = 64 * 1024
FINAL_STATES = ("succeeded", "failed", "cancelled")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    body = _load_chapter(args.chapter)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = args.url if args.url.endswith("/") else args.url + "/"
    submit_headers = {"X-Request-ID": args.request_id} if args.request_id else {}
    with httpx.Client(headers=headers, timeout=args.http_timeout) as client:
        answer = client.post(url, json=body, headers=submit_headers)
        if answer.status_code not in (200, 202):
            print(f"submit refused ({answer.status_code}): {_error_text(answer)}", file=sys.stderr)
            return 2
        submitted = answer.json()
        print(f"job {submitted['jobId']} {submitted['state']} (request id {answer.headers.get('X-Request-ID')})", file=sys.stderr)
        status = _follow(client, submitted["statusUrl"], args.timeout)
        if status is None:
            return 1
        if status["state"] != "succeeded":
            print(f"job {status['state']}: {(status.get('error') or {}).get('message', 'no error recorded')}", file=sys.stderr)
            return 1
        video = (status.get("artifact") or {}).get("video")
        if video is None:
            print("the job has no video (a dry run?)", file=sys.stderr)
            return 1
        out = args.out or Path(f"{status['jobId']}.mp4")
        return 0 if _download(client, video, out) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="where the preview API is mounted, e.g. http://127.0.0.1:8000/api/preview/")
    parser.add_argument("chapter", type=Path, metavar="CHAPTER.json")
    parser.add_argument("--token", default=os.environ.get("PREVIEW_API_TOKEN"), help="bearer token (PREVIEW_API_TOKEN)")
    parser.add_argument("--request-id", help="the request id to follow the job by in the logs (X-Request-ID)")
    parser.add_argument("--out", type=Path, help="where to save the video (default: JOBID.mp4)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the job")
    parser.add_argument("--http-timeout", type=float, default=30.0, help="seconds to wait for one HTTP answer")
    return parser


def _load_chapter(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"{path} must hold a JSON object (a job request, or a bare previewRequest)")
    if "previewRequest" not in data and "steps" in data:
        return {"projectId": "example", "previewRequest": data}
    return data


def _follow(client: httpx.Client, status_url: str, timeout_s: float) -> dict[str, Any] | None:
    """Poll until the job is final, drawing a progress line; None on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(status_url)
        answer.raise_for_status()
        status: dict[str, Any] = answer.json()
        filled = int(status["progress"] * 30)
        print(f"\r[{'#' * filled}{'-' * (30 - filled)}] {status['progress'] * 100:5.1f}% {status['state']:<11}",
              end="", file=sys.stderr, flush=True)
        if status["state"] in FINAL_STATES:
            print(file=sys.stderr)
            return status
        if time.monotonic() > deadline:
            print(f"\ngave up after {timeout_s:g} s", file=sys.stderr)
            return None
        time.sleep(POLL_INTERVAL_S)


def _download(client: httpx.Client, link: dict[str, Any], out: Path) -> bool:
    """Download ``link`` to ``out``; True when its sha256 and size match the status."""
    if "signature=" in link["url"]:
        # A signed URL carries its own credentials: fetched without the token, as a browser would.
        with httpx.Client(timeout=client.timeout) as anonymous:
            return _save(anonymous, link, out)
    return _save(client, link, out)


def _save(client: httpx.Client, link: dict[str, Any], out: Path) -> bool:
    """Stream to a temporary file beside ``out``, hashing; renamed to ``out`` only when it matches."""
    digest = hashlib.sha256()
    size = 0
    partial = out.with_name(out.name + ".part")
    with client.stream("GET", link["url"]) as answer:
        if answer.status_code != 200:
            answer.read()
            print(f"download refused ({answer.status_code}): {_error_text(answer)}", file=sys.stderr)
            return False
        with open(partial, "wb") as file:
            for chunk in answer.iter_bytes(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
    if digest.hexdigest() != link["sha256"] or size != link["size"]:
        partial.unlink()
        print(f"download does not match: sha256 {digest.hexdigest()} ({size} bytes),"
              f" expected {link['sha256']} ({link['size']} bytes)", file=sys.stderr)
        return False
    partial.replace(out)
    print(f"video: {out} sha256 {link['sha256']} ({size} bytes) verified")
    return True


def _error_text(answer: httpx.Response) -> str:
    try:
        error = answer.json()["error"]
        return f"{error['code']}: {error['message']}" + (f" ({error['field']})" if error.get("field") else "")
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


if __name__ == "__main__":
    sys.exit(main())
