"""The Runner stops with the reason on errors no retry cures (authorization, a missing topic)
instead of logging warnings forever; transient errors are still only logged."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline.producer import DeliveryError
from pipeline.refusals import RefusedError, consume_errors, refused_outputs


class _Msg:
    """What the Runner reads of a consumed message with an error: ``error()``."""

    def __init__(self, err: KafkaError | None) -> None:
        self._err = err

    def error(self) -> KafkaError | None:
        return self._err


def _errors(*codes: int) -> list[Any]:
    return [_Msg(None), *(_Msg(KafkaError(code)) for code in codes)]


@pytest.mark.parametrize(("code", "named"), [
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, "READ to consume, WRITE to produce"),
    (KafkaError.GROUP_AUTHORIZATION_FAILED, "grant READ on the group"),
    (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "cluster ACLs"),
    (KafkaError._UNKNOWN_TOPIC, "`trailpipe topics create`"),
    (KafkaError.UNKNOWN_TOPIC_OR_PART, "`trailpipe topics create`"),
])
def test_a_refusal_stops_the_runner_with_the_reason(code: int, named: str) -> None:
    with pytest.raises(RefusedError, match=named) as raised:
        consume_errors(_errors(KafkaError._TRANSPORT, code))
    assert KafkaError(code).str() in str(raised.value)


def test_transient_errors_are_only_logged() -> None:
    consume_errors(_errors(KafkaError._TRANSPORT, KafkaError.NOT_COORDINATOR,
                            KafkaError._PARTITION_EOF))


def test_an_output_refused_by_the_cluster_stops_the_runner() -> None:
    failed = DeliveryError("2 failed", failures=(KafkaError(KafkaError._MSG_TIMED_OUT),
                                                 KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    refused = refused_outputs(failed)
    assert isinstance(refused, RefusedError) and "writing outputs" in str(refused)
    assert "WRITE to produce" in str(refused)
    denied = KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    assert "grant READ on the group" in str(refused_outputs(denied))


def test_transient_output_failures_are_retried() -> None:
    assert refused_outputs(DeliveryError("timed out", remaining=3)) is None
    assert refused_outputs(KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))) is None
