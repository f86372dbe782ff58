"""Operator commands: ``dlq list``, ``dlq replay`` and ``cancel``.

They act on the deployment the environment names (``PREVIEW_BROKER_URL``,
``PREVIEW_STORE_URL``), like the workers do.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_commands(commands: Any) -> None:
    """Add the operator sub-commands to the ``preview-worker`` parser."""
    dlq = commands.add_parser("dlq", help="list or replay dead-lettered jobs")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show dead-lettered jobs: id, project, stage, error, when")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=_dlq_list)
    replay = actions.add_parser("replay", help="put dead-lettered jobs back on their queue and reset their status")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("job_ids", nargs="*", default=[], metavar="JOB_ID")
    which.add_argument("--all", action="store_true", help="replay every dead-lettered job")
    replay.set_defaults(run=_dlq_replay)
    cancel = commands.add_parser(
        "cancel",
        help="cancel a queued or running job (exit 1 if it has succeeded or failed already)",
    )
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(run=_cancel)


def _dlq_list(args: argparse.Namespace) -> int:
    from preview_actors import current
    from preview_actors.dlq import dead_letters

    letters = dead_letters(current())
    if args.json:  # JSON Lines: one object per dead letter, nothing when there is none
        for letter in letters:
            print(json.dumps(letter.to_json()))
        return 0
    if not letters:
        print("no dead-lettered jobs")
        return 0
    print(f"{'JOB':36}  {'PROJECT':16}  {'STAGE':8}  {'DEAD AT':20}  ERROR")
    for letter in letters:
        row = letter.to_json()
        print(
            f"{row['jobId']:36}  {row['projectId'] or '-'!s:16}  {row['stage']:8}  "
            f"{row['deadAt'] or '-'!s:20}  {row['error'] or '-'}"
        )
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    from preview_actors import current
    from preview_actors.dlq import replay

    if not args.all and not args.job_ids:
        print("preview-worker: name JOB_IDs to replay, or --all", file=sys.stderr)
        return 2
    wanted = None if args.all else set(args.job_ids)
    replayed = replay(current(), wanted)
    for job_id in replayed:
        print(f"replayed {job_id}")
    missing = sorted((wanted or set()) - set(replayed))
    for job_id in missing:
        print(f"{job_id}: not in the dead-letter queue (already replayed, or never dead-lettered)")
    if not replayed and not missing:
        print("no dead-lettered jobs")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from preview_actors import JobNotFoundError, JobState, current
    from preview_actors.cancel import cancel_job

    runtime = current()
    before = runtime.store.get(args.job_id)
    cancelled_before = before is not None and before.state is JobState.CANCELLED
    try:
        record = cancel_job(args.job_id, runtime=runtime)
    except JobNotFoundError:
        print(f"preview-worker: no job {args.job_id}", file=sys.stderr)
        return 1
    if record.state is not JobState.CANCELLED:
        # As DELETE /{jobId} answers 409: a finished job cannot be cancelled.
        print(f"preview-worker: job {args.job_id} has already {record.state.value}; nothing to cancel", file=sys.stderr)
        return 1
    if cancelled_before:
        print(f"job {args.job_id} was cancelled already")
    else:
        print(f"job {args.job_id} cancelled")
    return 0
