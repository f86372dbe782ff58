"""The request model is the bottom layer: of preview_actors it imports only its errors and limits."""

from __future__ import annotations

import ast
from pathlib import Path

import preview_actors.request

PACKAGE = Path(preview_actors.request.__file__).parent
#: What the request layer may import from the rest of preview_actors.
ALLOWED = {"preview_actors.errors", "preview_actors.limits"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the preview_actors modules ``path`` imports, anywhere in it (functions included)."""
    package = "preview_actors.request"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            names.add(name)
    return {name for name in names if name.split(".")[0] == "preview_actors"}


def test_request_layer_imports_only_errors_and_limits() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert {path.stem for path in modules} >= {"types", "converter", "checks", "uris", "canonical"}
    for path in modules:
        outside = {name for name in imported_modules(path) if not name.startswith("preview_actors.request")}
        assert outside <= ALLOWED, f"{path.name} imports {sorted(outside - ALLOWED)}"
