"""Webhook signatures against published vectors, and the headers a request carries."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from pipeline.notify.config import WebhookRoute, standard_key
from pipeline.notify.webhook import github_signature, signed_headers, standard_signature

# The Standard Webhooks specification's example (also the reference libraries' test vector).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_signature_matches_the_spec_vector() -> None:
    key = standard_key(SecretStr(SPEC_SECRET))
    assert standard_signature(key, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    assert standard_signature(key, SPEC_ID, SPEC_TS + 1, SPEC_BODY) != SPEC_SIGNATURE


def test_github_signature_matches_githubs_documented_example() -> None:
    # GitHub's "Validating webhook deliveries" example secret and payload.
    assert github_signature(b"It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def test_headers_follow_the_routes_signing_choice() -> None:
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    standard = WebhookRoute(type="webhook", name="a", url="http://127.0.0.1/",
                            secret=SecretStr(secret))
    headers = signed_headers(standard, "abc-0", 1700000000, b"{}")
    assert headers["webhook-id"] == "abc-0" and headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == standard_signature(
        b"s" * 32, "abc-0", 1700000000, b"{}")
    assert "X-Hub-Signature-256" not in headers

    github = WebhookRoute(type="webhook", name="g", url="http://127.0.0.1/", signing="github",
                          secret=SecretStr("plain"))
    headers = signed_headers(github, "abc-0", 1700000000, b"{}")
    assert headers["X-Hub-Signature-256"] == github_signature(b"plain", b"{}")
    assert "webhook-signature" not in headers

    unsigned = WebhookRoute(type="webhook", name="n", url="http://127.0.0.1/", signing="none")
    assert not {"webhook-signature", "X-Hub-Signature-256"} & set(
        signed_headers(unsigned, "abc-0", 1, b"{}"))


def test_http_statuses_map_to_retry_decisions() -> None:
    from pipeline.notify.retry import DeliveryFailed, RouteGone
    from pipeline.notify.webhook import status_error

    assert isinstance(status_error(410, None, 0), RouteGone)
    limited = status_error(429, "12", 0)
    assert isinstance(limited, DeliveryFailed) and limited.retryable
    assert limited.retry_after_s == 12.0
    unavailable = status_error(503, "Thu, 01 Jan 1970 00:00:30 GMT", 10.0)
    assert isinstance(unavailable, DeliveryFailed) and unavailable.retry_after_s == 20.0
    bad = status_error(400, "5", 0)
    assert isinstance(bad, DeliveryFailed) and not bad.retryable and bad.retry_after_s is None
    assert isinstance(status_error(408, None, 0), DeliveryFailed)
    assert status_error(408, None, 0).retryable  # type: ignore[union-attr]
