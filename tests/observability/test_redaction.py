"""What :func:`preview_actors.redaction.redact` masks, and the filter that applies it to log records."""

from __future__ import annotations

import io
import json
import logging
import secrets
import uuid
from pathlib import Path

import pytest

from preview_actors import Settings, logs, redaction
from preview_actors.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:hunter2hunter@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        ("amqp://user:pa55word@rabbit:5672/%2F", "amqp://user:***@rabbit:5672/%2F"),
        ("cannot reach rediss://default:s3cr3t@cache.internal:6380", "cannot reach rediss://default:***@cache.internal:6380"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer ***"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "Basic ***"}'),
        ("sent header authorization=tok_live_123456", "sent header authorization=***"),
        ("curl -H 'x: y' with bearer abcdefgh12345678", "curl -H 'x: y' with bearer ***"),
        ("GET /api/preview/j/artifact?expires=1700000000&signature=9f86d081884c HTTP/1.1",
         "GET /api/preview/j/artifact?expires=1700000000&signature=*** HTTP/1.1"),
        ("https://bucket.s3/x.png?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcd&x=1",
         "https://bucket.s3/x.png?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
        ("/download?token=abc123&access_token=def&api_key=ghi", "/download?token=***&access_token=***&api_key=***"),
    ],
)  # fmt: skip
def test_redact_masks_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:9191/metrics",
        "progress=0.42 expires=1700000000",
        "Rendering attempt 2 with mock; needs a Bearer token",
        "asset 'cover': images/cover.png does not exist below PREVIEW_ASSET_ROOT",
        "user@example.com wrote redis://cache:6379/0",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secrets_are_masked_in_any_context_and_encoding() -> None:
    token, key, password = (f"canary-{secrets.token_hex(6)}" for _ in range(3))
    settings = Settings(
        broker_url=f"redis://:{password}%40x@127.0.0.1:1/0",
        store_url="memory://",
        data_dir=Path("/tmp"),
        api_token=token,
        signing_key=key,
    )

    redaction.register_secrets(settings)

    text = f"token {token}; key={key}; said {password}@x and {password}%40x; ok"
    assert redact(text) == "token ***; key=***; said *** and ***; ok"


def test_very_short_secrets_are_not_registered() -> None:
    redaction.register_secret("ab", None, "")
    assert redact("a tab and a cab") == "a tab and a cab"


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO]:
    """A logger whose handler was set up by ``logs.install("json")``, writing into a buffer."""
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    buffer = io.StringIO()
    logger.addHandler(logging.StreamHandler(buffer))
    logs.install("json", logger=logger)
    return logger, buffer


def test_installed_handlers_mask_messages_arguments_and_tracebacks(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    secret = f"canary-{secrets.token_hex(6)}"
    redaction.register_secret(secret)

    logger.warning("connecting to %s", f"redis://:{secret}@127.0.0.1:6379/0")
    logger.info("header Authorization: Bearer %s", secret)
    try:
        raise ConnectionError(f"refused https://cdn/x.png?signature={secret}&expires=1")
    except ConnectionError:
        logger.exception("download failed")

    output = buffer.getvalue()
    assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["message"] for line in lines] == [
        "connecting to redis://:***@127.0.0.1:6379/0",
        "header Authorization: Bearer ***",
        "download failed",
    ]
    assert "ConnectionError: refused https://cdn/x.png?signature=***&expires=1" in lines[2]["exception"]


def test_the_filter_keeps_lazy_arguments_when_nothing_is_masked() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "job %s took %d ms", ("j-1", 12), None)

    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("job %s took %d ms", ("j-1", 12))


def test_install_puts_each_filter_on_a_handler_once(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    logs.install("console", logger=logger)
    [handler] = [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and h.stream is buffer]
    assert [type(f).__name__ for f in handler.filters] == ["ContextFilter", "RedactingFilter"]
