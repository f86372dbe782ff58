"""The render stage's asset resolution: files below the root, data: URIs, downloads from allowed hosts."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preview_actors import assets as assets_module
from preview_actors.assets import resolve_assets, shown_uri
from preview_actors.errors import BadInputError, PermanentJobError, TransientJobError


def resolve(
    uri: str, root: Path, tmp_path: Path, *, sha256: str | None = None, hosts: frozenset[str] = frozenset()
) -> dict[str, Any]:
    return resolve_assets(
        [{"id": "cover", "type": "image", "uri": uri, "sha256": sha256}],
        asset_root=root,
        allowed_hosts=hosts,
        work_dir=tmp_path / "work",
    )["cover"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / "cover.png").write_bytes(b"png bytes")
    return root


def test_relative_path_below_the_root(root: Path, tmp_path: Path) -> None:
    resolved = resolve("images/cover.png", root, tmp_path)
    path = str(root / "images" / "cover.png")
    assert resolved == {"type": "image", "path": path, "sha256": None, "uri": "images/cover.png"}


def test_symlink_leading_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (root / "images" / "link.png").symlink_to(secret)

    with pytest.raises(BadInputError, match=r"asset 'cover' \(uri images/link.png\): leads outside PREVIEW_ASSET_ROOT"):
        resolve("images/link.png", root, tmp_path)


def test_symlink_inside_the_root_is_followed(root: Path, tmp_path: Path) -> None:
    (root / "alias.png").symlink_to(root / "images" / "cover.png")
    assert resolve("alias.png", root, tmp_path)["path"] == str(root / "images" / "cover.png")


def test_missing_file_names_the_asset_and_uri(root: Path, tmp_path: Path) -> None:
    expected = r"^asset 'cover' \(uri images/nope.png\): does not exist below PREVIEW_ASSET_ROOT$"
    with pytest.raises(BadInputError, match=expected):
        resolve("images/nope.png", root, tmp_path)


def test_a_directory_is_not_an_asset(root: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentJobError, match="does not exist"):
        resolve("images", root, tmp_path)


def test_sha256_mismatch_is_permanent(root: Path, tmp_path: Path) -> None:
    good = hashlib.sha256(b"png bytes").hexdigest()
    assert resolve("images/cover.png", root, tmp_path, sha256=good)["sha256"] == good
    with pytest.raises(BadInputError, match=r"asset 'cover' \(uri images/cover.png\): sha256 is"):
        resolve("images/cover.png", root, tmp_path, sha256="0" * 64)


def test_data_uri_is_written_to_the_attempt_folder(root: Path, tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(b"tiny image").decode()
    path = Path(resolve(uri, root, tmp_path)["path"])
    assert path.read_bytes() == b"tiny image"
    assert path.parent == tmp_path / "work"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.path = self.path.split("?", 1)[0]
        if self.path == "/cover.png":
            body = b"downloaded bytes"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big.png":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 4096)
        elif self.path == "/broken.png":
            self.send_error(503)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_from_an_allowed_host(server: str, root: Path, tmp_path: Path) -> None:
    path = Path(resolve(f"{server}/cover.png", root, tmp_path, hosts=frozenset({"127.0.0.1"}))["path"])
    assert path.read_bytes() == b"downloaded bytes"


def test_download_refuses_hosts_not_allowed(server: str, root: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentJobError, match="not in PREVIEW_ASSET_ALLOWED_HOSTS"):
        resolve(f"{server}/cover.png", root, tmp_path, hosts=frozenset({"cdn.example.com"}))


def test_download_errors_are_classified(server: str, root: Path, tmp_path: Path) -> None:
    hosts = frozenset({"127.0.0.1"})
    with pytest.raises(BadInputError, match=r"/missing.png\): answered 404"):
        resolve(f"{server}/missing.png", root, tmp_path, hosts=hosts)
    with pytest.raises(TransientJobError, match="answered 503"):
        resolve(f"{server}/broken.png", root, tmp_path, hosts=hosts)


def test_download_is_bounded_in_size(server: str, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets_module, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(PermanentJobError, match="larger than 1000 bytes"):
        resolve(f"{server}/big.png", root, tmp_path, hosts=frozenset({"127.0.0.1"}))
    assert list((tmp_path / "work").iterdir()) == []


def test_unreachable_host_is_transient(root: Path, tmp_path: Path) -> None:
    with pytest.raises(TransientJobError, match="download failed"):
        resolve("http://127.0.0.1:9/cover.png", root, tmp_path, hosts=frozenset({"127.0.0.1"}))


def test_every_refusal_is_bad_input_naming_the_uri_and_no_server_path(root: Path, tmp_path: Path) -> None:
    refusals = [
        ("images/nope.png", frozenset()),
        ("data:image/png;base64,!!!", frozenset()),
        ("https://elsewhere.example.com/x.png?token=abc", frozenset()),
    ]
    for uri, hosts in refusals:
        with pytest.raises(BadInputError) as caught:
            resolve(uri, root, tmp_path, hosts=hosts)
        message = str(caught.value)
        assert message.startswith(f"asset 'cover' (uri {shown_uri(uri)}): "), message
        assert str(tmp_path) not in message
        assert isinstance(caught.value, PermanentJobError)  # no retry


def test_the_renderer_is_given_each_uri_as_messages_show_it(root: Path, server: str, tmp_path: Path) -> None:
    data = "data:image/png;base64," + base64.b64encode(b"tiny image").decode()
    assert resolve(data, root, tmp_path)["uri"] == "data:image/png;base64,…"
    url = f"{server}/cover.png?signature=secret#frag"
    assert resolve(url, root, tmp_path, hosts=frozenset({"127.0.0.1"}))["uri"] == f"{server}/cover.png?…"


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("images/cover.png", "images/cover.png"),
        ("data:text/plain,hello", "data:text/plain,…"),
        ("https://cdn.example.com/a/b.mp4", "https://cdn.example.com/a/b.mp4"),
        ("https://cdn.example.com/b.mp4?X-Amz-Signature=abc", "https://cdn.example.com/b.mp4?…"),
        ("x/" * 150, ("x/" * 100)[:199] + "…"),
    ],
)
def test_shown_uri(uri: str, shown: str) -> None:
    assert shown_uri(uri) == shown
