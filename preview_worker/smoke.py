"""``preview-worker smoke``: is a deployed API, with its workers, rendering?

Submits a dry run and a small real render (no assets, so nothing to upload),
follows both to ``succeeded``, then downloads the video twice and checks its
sha256 and size each time: with the bearer token it was given (so a wrong
token fails even where signed URLs would let the download through) and with
the signed URL from the status (so a signing key that differs between API
instances fails too). Any failure prints one ``FAIL`` line saying what failed
and the likely cause, and exits 1; a call without a token exits 2.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import uuid
from typing import Any

import httpx

#: Seconds between status polls.
POLL_INTERVAL_S = 0.5
#: Seconds to wait for one HTTP answer.
HTTP_TIMEOUT_S = 15.0
#: Exit statuses: a check failed; the command was called wrongly.
EXIT_FAILED = 1
EXIT_USAGE = 2

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
    smoke.add_argument(
        "--token",
        default=os.environ.get("PREVIEW_API_TOKEN") or None,
        help="the API's bearer token (its PREVIEW_API_TOKEN; default: $PREVIEW_API_TOKEN), checked by a download",
    )
    smoke.add_argument(
        "--no-token", action="store_true", help="the API has no PREVIEW_API_TOKEN: check the signed URL only"
    )
    smoke.add_argument("--project", default="smoke-test", help="projectId of the smoke jobs")
    smoke.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="per job (default 120)")
    smoke.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    token = None if args.no_token else args.token
    if token is None and not args.no_token:
        print("FAIL no token: pass --token (the API's PREVIEW_API_TOKEN), or --no-token when the API has none")
        return EXIT_USAGE
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = args.url.rstrip("/") + "/"
    try:
        with httpx.Client(headers=headers, timeout=HTTP_TIMEOUT_S, follow_redirects=False) as client:
            _check_health(client, base)
            dry = _render(client, base, args, dry_run=True)
            print(f"ok   dry run {dry['jobId']} succeeded")
            real = _render(client, base, args, dry_run=False)
            print(f"ok   render {real['jobId']} succeeded")
            video = _video(real)
            if token:
                size = _download(client, f"{base}{real['jobId']}/artifact", video, "with the token")
                print(f"ok   video downloaded with the token: {size} bytes, sha256 verified")
            if "signature=" in video["url"]:
                with httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False) as anonymous:
                    size = _download(anonymous, video["url"], video, "with its signed URL")
                print(f"ok   video downloaded with its signed URL: {size} bytes, sha256 verified")
            elif not token:
                raise SmokeFailure("the status's video URL is not signed and --no-token was given: nothing can download it")
    except SmokeFailure as failure:
        print(f"FAIL {failure}")
        return EXIT_FAILED
    except httpx.HTTPError as error:
        print(f"FAIL cannot reach {base}: {error}")
        return EXIT_FAILED
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
        document: dict[str, Any] = status.json()
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


def _video(status: dict[str, Any]) -> dict[str, Any]:
    video: dict[str, Any] | None = (status.get("artifact") or {}).get("video")
    if not video:
        raise SmokeFailure("the finished render has no video artifact")
    return video


def _download(client: httpx.Client, url: str, video: dict[str, Any], how: str) -> int:
    """GET ``url`` and check it is ``video`` (content type, size, sha256); return its size in bytes."""
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", url) as answer:
        if answer.status_code != 200:
            answer.read()
            raise SmokeFailure(
                f"downloading the video {how} answered {answer.status_code}: {_error_text(answer)}"
                f" ({_DOWNLOAD_CAUSES.get(how, 'see docs/SMOKE_TESTS.md')})"
            )
        if not answer.headers.get("content-type", "").startswith("video/mp4"):
            raise SmokeFailure(f"the video came as {answer.headers.get('content-type')!r}, not video/mp4")
        for chunk in answer.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != video["sha256"] or size != video["size"]:
        raise SmokeFailure(f"the video downloaded {how} ({size} bytes) does not match its sha256 and size in the status")
    return size


#: The likely cause of a refused download, by how it was downloaded.
_DOWNLOAD_CAUSES = {
    "with the token": "wrong --token: it must be the API's PREVIEW_API_TOKEN",
    "with its signed URL": "PREVIEW_SIGNING_KEY differs between API instances, or their clocks disagree",
}


def _error_text(answer: httpx.Response) -> str:
    """``code: message`` of a JSON error body, else the start of the body."""
    try:
        document = answer.json()
    except ValueError:
        return answer.text[:200]
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return answer.text[:200]
    return f"{error.get('code')}: {error.get('message')}"
