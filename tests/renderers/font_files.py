"""The system's font files, for the text tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import IN_CI


def system_font(name: str) -> Path:
    """A font file of the system's, by file name; skips locally (fails in CI) when it is missing."""
    for root in ("/usr/share/fonts", "/usr/local/share/fonts"):
        for folder, _, files in os.walk(root):
            if name in files:
                return Path(folder) / name
    message = f"font {name} is not installed (apt-get install fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji)"
    if IN_CI:
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)
