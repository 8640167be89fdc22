"""How the Kubernetes runtime words API and connection errors: one line, transient or terminal."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

from highway.runtime import RuntimeTerminal, RuntimeTransient
from highway.runtime.kubernetes import classify, unreachable

HOST = "https://cluster.invalid:6443"
WHERE = "deploy app: ConfigMap highway/app-conf"


def api_error(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = f'{{"kind": "Status", "message": "{message}"}}'
    return error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, RuntimeTransient),
        (503, RuntimeTransient),
        (429, RuntimeTransient),
        (409, RuntimeTransient),
        (401, RuntimeTerminal),
        (403, RuntimeTerminal),
        (404, RuntimeTerminal),
        (422, RuntimeTerminal),
    ],
)
def test_api_errors_are_classified_with_one_line(status: int, expected: type[Exception]) -> None:
    error = classify(WHERE, api_error(status, "Why", "the server\nsays no"), HOST)
    assert type(error) is expected
    message = str(error)
    assert message.startswith(f"{WHERE}: HTTP {status}")
    assert "the server says no" in message and "\n" not in message


def test_no_answer_is_transient_unless_the_certificate_is_refused() -> None:
    assert type(classify(WHERE, ApiException(status=0, reason="EOF occurred"), HOST)) is RuntimeTransient
    tls = ApiException(status=0, reason="SSLError(CERTIFICATE_VERIFY_FAILED)")
    assert type(classify(WHERE, tls, HOST)) is RuntimeTerminal


def test_connection_errors_are_transient() -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    for error, cause in (
        (MaxRetryError(None, "/apis", refused), "[Errno 111] Connection refused"),  # type: ignore[arg-type]
        (ReadTimeoutError(None, "/apis", "Read timed out."), "timed out"),  # type: ignore[arg-type]
        (ConnectionResetError(104, "Connection reset by peer"), "[Errno 104] Connection reset by peer"),
    ):
        transient = unreachable(WHERE, error, HOST)
        message = str(transient)
        assert f"cannot reach the API server at {HOST}" in message
        assert message.endswith(cause) and "\n" not in message, message
