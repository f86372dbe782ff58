"""A bad asset URI in a *stored* request is the job's bad input: it fails at once, never retried.

A request is judged by the URI rules at submit; a stored one may still carry a URI
those rules refuse (written by an earlier release, or by hand). The render stage
then raises :class:`~preview_actors.request.UriError`, which must be permanent.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import chapter_request, running_worker, wait_for_state

from preview_actors import BadInputError, JobState, PermanentJobError, submit_preview
from preview_actors.request import UriError, decode_data_uri
from preview_actors.runtime import Runtime


def test_uri_error_is_bad_input() -> None:
    with pytest.raises(BadInputError) as caught:
        decode_data_uri("data:image/png;base64,!!!")
    assert isinstance(caught.value, UriError)
    assert isinstance(caught.value, PermanentJobError)
    assert caught.value.reason == "malformed data: URI (invalid base64)"


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,!!!",  # undecodable
        "data:image/png;base64,",  # empty
        "/etc/passwd",  # absolute: refused at submit by the same rules
    ],
)
def test_job_with_a_bad_stored_uri_fails_at_once(runtime_factory: Callable[..., Runtime], uri: str) -> None:
    # Given a job whose stored request names an asset by a URI the rules refuse
    runtime = runtime_factory("stub", max_retries=3, retry_min_backoff_ms=50, retry_max_backoff_ms=200)
    body = chapter_request()
    body["previewRequest"]["assets"] = [{"id": "cover", "type": "image", "uri": "images/cover.png"}]  # type: ignore[index]
    body["previewRequest"]["steps"][0]["asset"] = "cover"  # type: ignore[index]
    job_id = submit_preview(body).record.job_id
    stored = runtime.store.get(job_id)
    assert stored is not None
    stored.request["previewRequest"]["assets"][0]["uri"] = uri
    runtime.store.update(job_id, request=stored.request)

    # When a worker runs it
    with running_worker(runtime, threads=1):
        record = wait_for_state(runtime, job_id, JobState.FAILED, JobState.SUCCEEDED)

    # Then it fails at once as bad input, naming the asset, with no retry
    assert record.state is JobState.FAILED
    assert record.attempts == 1
    assert record.error is not None
    assert record.error["code"] == "bad_input"
    assert record.error["retryable"] is False
    assert "asset 'cover'" in record.error["message"]
