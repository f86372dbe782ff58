from __future__ import annotations

from pathlib import Path

import pytest

from preview_actors import ConfigError, Settings


def test_defaults_are_the_embedded_sqlite_setup(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})

    assert settings.broker_url == f"sqlite:///{tmp_path}/queue.db"
    assert settings.store_url == settings.broker_url
    assert settings.data_dir == tmp_path
    assert settings.renderer == "ffmpeg"
    assert settings.log_format == "json"


def test_values_are_read_and_parsed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DATA_DIR": str(tmp_path),
            "PREVIEW_BROKER_URL": "redis://127.0.0.1:6379/3",
            "PREVIEW_MAX_CONCURRENCY": "2",
            "PREVIEW_QUEUE_MAX": "5",
            "PREVIEW_RENDER_TIMEOUT_S": "12.5",
            "PREVIEW_ASSET_ALLOWED_HOSTS": "CDN.example.com, media.example.org ,",
            "PREVIEW_API_TOKEN": "t0ken",
            "PREVIEW_LOG_FORMAT": "Console",
            "PREVIEW_MAX_STEPS": "7",
        }
    )
    assert settings.store_url == "redis://127.0.0.1:6379/3"
    assert (settings.max_concurrency, settings.queue_max, settings.render_timeout_s) == (2, 5, 12.5)
    assert settings.asset_allowed_hosts == {"cdn.example.com", "media.example.org"}
    assert settings.log_format == "console"
    assert settings.limits.max_steps == 7
    assert "t0ken" not in repr(settings)


def test_amqp_broker_keeps_job_status_in_sqlite_by_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "PREVIEW_BROKER_URL": "amqp://guest:guest@localhost/"})
    assert settings.store_url == f"sqlite:///{tmp_path}/jobs.db"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("PREVIEW_BROKER_URL", "mysql://x", "must start with one of"),
        ("PREVIEW_BROKER_URL", "localhost:6379", "must start with one of"),
        ("PREVIEW_STORE_URL", "amqp://x", "must start with one of"),
        ("PREVIEW_MAX_CONCURRENCY", "two", "must be an integer"),
        ("PREVIEW_MAX_CONCURRENCY", "0", "at least 1"),
        ("PREVIEW_QUEUE_MAX", "1.5", "must be an integer"),
        ("PREVIEW_RENDER_TIMEOUT_S", "nan", "finite"),
        ("PREVIEW_RENDER_TIMEOUT_S", "-3", "at least"),
        ("PREVIEW_MAX_RETRIES", "-1", "at least 0"),
        ("PREVIEW_LOG_FORMAT", "xml", "json, console"),
        ("PREVIEW_RENDERER", "  ", "ffmpeg"),
        ("PREVIEW_MAX_BODY_BYTES", "10", "at least 1024"),
    ],
)
def test_invalid_values_name_the_variable(tmp_path: Path, variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"DATA_DIR": str(tmp_path), variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert fragment in str(raised.value)


def test_renderer_command(tmp_path: Path) -> None:
    import sys

    mock = Settings.from_env({"DATA_DIR": str(tmp_path), "PREVIEW_RENDERER": "mock"})
    custom = Settings.from_env({"DATA_DIR": str(tmp_path), "PREVIEW_RENDERER": "/opt/bin/render --fast 'a b'"})
    assert mock.renderer_command == [sys.executable, "-m", "renderers.mock"]
    assert custom.renderer_command == ["/opt/bin/render", "--fast", "a b"]
    assert custom.renderer_name == "custom"


def test_invalid_broker_url_fails_at_worker_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import preview_actors"],
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "PREVIEW_QUEUE_MAX": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PREVIEW_QUEUE_MAX: must be an integer, not 'lots'" in result.stderr


def test_importing_with_sqlite_url_imports_no_other_driver(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, preview_actors; print('pika' in sys.modules, 'redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["False", "False"], result.stderr
    assert not (tmp_path / "data").exists()  # nothing created at import
