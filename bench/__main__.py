"""``python -m bench SUB-COMMAND [options]``: run one benchmark and print its table and ratios.

Sub-commands (``python -m bench SUB-COMMAND --help`` for options):

- ``pipeline``  — pipeline overhead against a bare dramatiq pipeline and a Celery chain (Redis)
- ``sqlite``    — SQLite broker throughput against the ideal and the Redis broker
- ``api``       — the submit API against a minimal Starlette endpoint pushing to Redis
- ``render``    — the ffmpeg renderer against one hand-written ffmpeg command
- ``storage``   — storing a 1 GiB artifact against a bare hashlib.file_digest pass
- ``recovery``  — seconds from SIGKILL of a worker mid-render to the job's success, per broker
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Sub-command → (module in this package, one-line help).
COMMANDS = {
    "pipeline": ("pipeline", "pipeline overhead: preview vs bare dramatiq (limit) vs Celery chain (peer)"),
    "sqlite": ("sqlite_broker_throughput", "SQLite broker: jobs/s vs the ideal and vs the Redis broker"),
    "api": ("api", "submit API vs a minimal Starlette endpoint pushing to Redis"),
    "render": ("render", "ffmpeg renderer vs a hand-written ffmpeg command"),
    "storage": ("storage", "storing a 1 GiB artifact vs hashlib.file_digest: throughput and peak RSS"),
    "recovery": ("recovery", "seconds from SIGKILL mid-render to success, per broker"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUB-COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    # Import only the chosen benchmark (each pulls in its own dependencies: Celery, uvicorn, ffmpeg…).
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(f"{__package__}.{module_name}")
            sub.description = module.__doc__
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
