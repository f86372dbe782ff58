"""``preview-worker smoke``: is a deployed API, with its workers, rendering?

Submits a dry run and a small real render (no assets, so nothing to upload),
follows both to ``succeeded``, downloads the video and checks its sha256.
Any failure exits non-zero with one line saying what failed and the likely
cause.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import uuid
from typing import Any

import httpx

#: Seconds between status polls.
POLL_INTERVAL_S = 0.5

SMOKE_CHAPTER = {
    "chapterId": "smoke-test",
    "output": "preview",
    "steps": [
        {"id": "one", "durationMs": 1000, "title": "Smoke test", "text": "preview-worker", "background": "#0b3d91"},
        {"id": "two", "durationMs": 1000, "title": "Still rendering", "background": "#f4a261"},
    ],
}


class SmokeFailure(Exception):
    """One check failed; the message says which and why."""


def add_command(commands: Any) -> None:
    smoke = commands.add_parser(
        "smoke",
        help="check a deployed API and its workers: a dry run and a small real render",
        description=__doc__.split("\n\n")[0],
    )
    smoke.add_argument("--url", required=True, help="where the API is mounted, e.g. https://host/api/preview")
    smoke.add_argument("--token", help="the API's bearer token (PREVIEW_API_TOKEN), for the download")
    smoke.add_argument("--project", default="smoke-test", help="projectId of the smoke jobs")
    smoke.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="per job (default 120)")
    smoke.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    base = args.url.rstrip("/") + "/"
    try:
        with httpx.Client(headers=headers, timeout=15.0, follow_redirects=False) as client:
            _check_health(client, base)
            dry = _render(client, base, args, dry_run=True)
            print(f"ok   dry run {dry['jobId']} succeeded")
            real = _render(client, base, args, dry_run=False)
            size = _download(client, real)
            print(f"ok   render {real['jobId']} succeeded; video {size} bytes, sha256 verified")
    except SmokeFailure as failure:
        print(f"FAIL {failure}")
        return 1
    except httpx.HTTPError as error:
        print(f"FAIL cannot reach {base}: {error}")
        return 1
    print("smoke test passed")
    return 0


def _check_health(client: httpx.Client, base: str) -> None:
    ready = client.get(base + "readyz")
    if ready.status_code != 200:
        raise SmokeFailure(f"readyz answered {ready.status_code}: {_error_text(ready)}")
    print("ok   readyz")


def _render(client: httpx.Client, base: str, args: argparse.Namespace, *, dry_run: bool) -> dict[str, Any]:
    body = {"jobId": str(uuid.uuid4()), "projectId": args.project, "dryRun": dry_run, "previewRequest": SMOKE_CHAPTER}
    what = "dry run" if dry_run else "render"
    answer = client.post(base, json=body, headers={"X-Request-ID": f"smoke-{body['jobId']}"})
    if answer.status_code != 202:
        raise SmokeFailure(f"submitting the {what} answered {answer.status_code}: {_error_text(answer)}")
    status_url = answer.json()["statusUrl"]
    deadline = time.monotonic() + args.timeout
    state = "queued"
    while time.monotonic() < deadline:
        status = client.get(status_url)
        if status.status_code != 200:
            raise SmokeFailure(f"status of the {what} answered {status.status_code}: {_error_text(status)}")
        document = status.json()
        state = document["state"]
        if state == "succeeded":
            return document
        if state in ("failed", "cancelled"):
            raise SmokeFailure(f"the {what} ended {state}: {(document.get('error') or {}).get('message')}")
        time.sleep(POLL_INTERVAL_S)
    raise SmokeFailure(
        f"the {what} {body['jobId']} is still {state!r} after {args.timeout:g}s: are workers running "
        "(dramatiq preview_actors) on the same broker?"
    )


def _download(client: httpx.Client, status: dict[str, Any]) -> int:
    video = (status.get("artifact") or {}).get("video")
    if not video:
        raise SmokeFailure("the finished render has no video artifact")
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", video["url"]) as answer:
        if answer.status_code != 200:
            answer.read()
            raise SmokeFailure(f"downloading the video answered {answer.status_code}: {_error_text(answer)}")
        if not answer.headers.get("content-type", "").startswith("video/mp4"):
            raise SmokeFailure(f"the video came as {answer.headers.get('content-type')!r}, not video/mp4")
        for chunk in answer.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != video["sha256"] or size != video["size"]:
        raise SmokeFailure(f"the downloaded video ({size} bytes) does not match its sha256 and size in the status")
    return size


def _error_text(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error", {})
        return f"{error.get('code')}: {error.get('message')}"
    except ValueError:
        return answer.text[:200]
