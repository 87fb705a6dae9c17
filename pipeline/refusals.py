"""How the poll loop gives up: :class:`FatalRunnerError` (a fatal client error, exit 1) and
:class:`RefusedError` (the cluster refuses this principal or a topic is missing, exit 2), and
which Kafka errors are refusals."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, Message

from pipeline.logs import get_logger
from pipeline.producer import DeliveryError

log = get_logger("pipeline.runner")


class FatalRunnerError(Exception):
    """The loop cannot go on (a fatal client error); the daemon exits 1."""


class RefusedError(FatalRunnerError):
    """The cluster refuses this principal, or a subscribed topic does not exist: only a change
    of ACLs, credentials or topics helps, so the daemon exits 2 (bad config: supervisors and
    systemd do not restart it in a loop)."""


# Errors librdkafka reports as non-fatal that no retry cures: the cluster refuses this
# principal, or a subscribed topic is gone. Retrying them only logs warnings while nothing is
# read (a silent lock-out), so they stop the daemon with the reason and what to do.
REFUSALS = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "the cluster denies this principal a topic; "
    "grant it the topic ACLs it needs (READ to consume, WRITE to produce) or fix the "
    "credentials in [kafka]",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "the cluster denies this principal the consumer "
    "group; grant READ on the group (ACLs) or fix the credentials in [kafka]",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "the cluster denies this principal; grant the "
    "cluster ACLs it needs or fix the credentials in [kafka]",
    KafkaError._UNKNOWN_TOPIC: "a subscribed topic does not exist; create the documented "
    "topics with `trailpipe topics create`",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "a subscribed topic does not exist; create the "
    "documented topics with `trailpipe topics create`",
}


def consume_errors(msgs: list[Message]) -> None:
    """Raise :class:`FatalRunnerError` for a fatal error or a refusal (:data:`REFUSALS`);
    log the others (transient: librdkafka retries them)."""
    for msg in msgs:
        err = msg.error()
        if err is None:
            continue
        if err.fatal():
            raise FatalRunnerError(str(err))
        if err.code() in REFUSALS:
            raise RefusedError(f"{REFUSALS[err.code()]} ({err.str()})")
        log.warning("consume_error", error=str(err), retriable=err.retriable())


def refused_outputs(exc: KafkaException | DeliveryError) -> RefusedError | None:
    """The refusal (:data:`REFUSALS`) among a failed cycle's output errors, or None: the
    cluster denies writing a topic, so re-reading and producing again can never succeed."""
    errors = exc.failures if isinstance(exc, DeliveryError) else exc.args[:1]
    for err in errors:
        if isinstance(err, KafkaError) and err.code() in REFUSALS:
            return RefusedError(f"writing outputs: {REFUSALS[err.code()]} ({err.str()})")
    return None
