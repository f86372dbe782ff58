"""Build a renderer SPEC.json from a job request exactly as the render stage does.

It validates the request with the job model, resolves the assets below the
asset root and lays out the spec with the render stage's own functions, so the
benchmark renders what a worker would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from preview_actors.assets import resolve_assets
from preview_actors.request import parse_job_request
from preview_actors.stages import build_spec as stage_spec


def build_spec(chapter_file: Path, asset_root: Path, cache_dir: Path | None, job_id: str = "bench") -> dict[str, Any]:
    data = json.loads(chapter_file.read_text(encoding="utf-8"))
    if "previewRequest" not in data:
        data = {"projectId": "bench", "previewRequest": data}
    request = parse_job_request(data)
    assets = resolve_assets(
        [{"id": a.id, "type": a.type, "uri": a.uri, "sha256": a.sha256} for a in request.preview_request.assets],
        asset_root=asset_root,
        allowed_hosts=frozenset(),
        work_dir=asset_root / ".bench-assets",
    )
    return stage_spec(request, job_id, assets, cache_dir)


def write_spec(spec: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path
