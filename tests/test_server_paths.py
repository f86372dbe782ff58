"""ServerPaths: the last line of defence keeping DATA_DIR and PREVIEW_ASSET_ROOT out of job errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from preview_actors.server_paths import ServerPaths
from preview_actors.settings import Settings

PATHS = ServerPaths.named([("/srv/previews", "DATA_DIR"), ("/srv/previews/assets", "PREVIEW_ASSET_ROOT")])


@pytest.mark.parametrize(
    "text, shown",
    [
        ("bad input: /srv/previews/jobs/j1/attempts/1/spec.json is unreadable",
         "bad input: jobs/j1/attempts/1/spec.json is unreadable"),
        # below the asset root (inside DATA_DIR here: the longer folder wins) a path becomes its uri
        ("cannot identify image file '/srv/previews/assets/images/cover.png'",
         "cannot identify image file 'images/cover.png'"),
        ("Error opening input file file:/srv/previews/assets/video/demo.mp4.",
         "Error opening input file file:video/demo.mp4."),
        ("/srv/previews/jobs/a.mp4: No space left on device", "jobs/a.mp4: No space left on device"),
        ("[Errno 13] Permission denied: '/srv/previews/'", "[Errno 13] Permission denied: 'DATA_DIR'"),
        ("DATA_DIR is /srv/previews", "DATA_DIR is DATA_DIR"),
        ("(/srv/previews/assets)", "(PREVIEW_ASSET_ROOT)"),
        # not below either folder: left alone
        ("/srv/previews2/x.png and /home/srv/previews/x.png", "/srv/previews2/x.png and /home/srv/previews/x.png"),
        ("asset 'cover' (uri images/cover.png): empty", "asset 'cover' (uri images/cover.png): empty"),
    ],
)  # fmt: skip
def test_paths_below_the_folders_are_shown_relative(text: str, shown: str) -> None:
    assert PATHS.hide(text) == shown


def test_a_folder_is_recognised_through_its_symlink_too(tmp_path: Path) -> None:
    real = tmp_path / "real-data"
    real.mkdir()
    (tmp_path / "data").symlink_to(real)
    paths = ServerPaths.named([(tmp_path / "data", "DATA_DIR")])

    assert paths.hide(f"{real}/jobs/x and {tmp_path / 'data'}/jobs/y") == "jobs/x and jobs/y"


def test_of_settings_hides_data_dir_and_the_asset_root(tmp_path: Path) -> None:
    settings = Settings(
        broker_url="stub://", store_url="memory://", data_dir=tmp_path / "data", asset_root=tmp_path / "assets"
    )
    paths = ServerPaths.of(settings)

    assert paths.hide(f"{tmp_path}/data/jobs/x.log; {tmp_path}/assets/a.png; {tmp_path}/other") == (
        f"jobs/x.log; a.png; {tmp_path}/other"
    )


def test_no_folders_change_nothing() -> None:
    assert ServerPaths(()).hide("/srv/previews/x") == "/srv/previews/x"
