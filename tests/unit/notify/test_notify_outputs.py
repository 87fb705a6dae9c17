"""SNS publish arguments (FIFO dedup id vs message attribute) and error classification."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from pipeline.notify.alerts import delivery_key
from pipeline.notify.outputs import Sns
from pipeline.notify.retry import DeliveryFailed


class FakeSns:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.error = error

    def publish(self, **kwargs) -> dict:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"MessageId": "m"}


ARN = "arn:aws:sns:eu-west-1:111122223333:alerts"


def test_a_standard_topic_carries_the_key_as_an_attribute(make_alert) -> None:
    client, alert = FakeSns(), make_alert(update=2)
    Sns(client, ARN).send(alert, b"")
    (call,) = client.calls
    assert call["MessageAttributes"]["delivery_key"]["StringValue"] == delivery_key(alert)
    assert json.loads(call["Message"])["delivery_key"] == delivery_key(alert)
    assert "MessageDeduplicationId" not in call and "MessageGroupId" not in call
    assert call["Subject"].startswith("[high] ") and len(call["Subject"]) <= 100


def test_a_fifo_topic_deduplicates_by_the_key(make_alert) -> None:
    client, alert = FakeSns(), make_alert()
    Sns(client, ARN + ".fifo").send(alert, b"")
    (call,) = client.calls
    assert call["MessageDeduplicationId"] == delivery_key(alert)
    assert call["MessageGroupId"] == alert["alert_id"]


@pytest.mark.parametrize(("code", "retryable"), [
    ("NotFound", False), ("AuthorizationError", False), ("Throttling", True),
    ("InternalError", True)])
def test_errors_are_classified(make_alert, code: str, retryable: bool) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "Publish")
    with pytest.raises(DeliveryFailed) as info:
        Sns(FakeSns(error), ARN).send(make_alert(), b"")
    assert info.value.retryable is retryable and code in str(info.value)
