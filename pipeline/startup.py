"""Start-up checks that turn a refusal into a one-line failure: a lake that denies writes
(:func:`probe_lake_writes`), topics that are missing or hidden by ACLs (:func:`topic_problems`).

A daemon whose destination denies it (a bucket policy, missing permissions, wrong credentials)
would otherwise start, retry every flush with backpressure and log warnings forever while
nothing is written: a silent lock-out. An *unreachable* destination is different: it may come
back, so it is only logged and the daemon starts (and backpressures until it answers).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection

from pipeline.lake.store import ObjectStore, StoreError
from pipeline.logs import get_logger

log = get_logger("pipeline.startup")

PROBE_DIR = "_probe"
# What S3 and S3-compatible stores answer when the request is understood and refused.
DENIED_CODES = frozenset({"401", "403", "AccessDenied", "Forbidden", "AllAccessDisabled",
                          "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccountProblem"})


class DestinationRefused(ValueError):
    """The destination refuses this daemon: a setting, a policy, credentials or a missing
    bucket must be fixed first (a ValueError, so ``trailpipe consume`` exits 2 with the
    message, as for bad config)."""


def probe_lake_writes(store: ObjectStore, daemon: str) -> None:
    """Put one small object at ``_probe/<daemon>`` (one key per daemon, overwritten at every
    start) and delete it again. Raises :class:`DestinationRefused` when the lake denies the
    put or has no bucket; logs any other failure and returns (an unreachable lake may come
    back). The delete is best effort: a lake that keeps objects (Object Lock, no delete
    permission) is not refused."""
    key = f"{PROBE_DIR}/{daemon}"
    try:
        store.put(key, f"{daemon} start-up probe at {time.time_ns() // 1_000_000}".encode())
    except (StoreError, PermissionError) as exc:
        reason = _refusal(exc, store.url, daemon, key)
        if reason is not None:
            raise DestinationRefused(reason) from exc
        log.warning("lake_probe_failed", lake=store.url, daemon=daemon, error=str(exc),
                    error_type=type(exc).__name__)
        return
    try:
        store.delete(key)
    except (StoreError, OSError) as exc:
        log.info("lake_probe_kept", lake=store.url, key=key, error=str(exc))


def _refusal(exc: Exception, url: str, daemon: str, key: str) -> str | None:
    """The one-line reason when ``exc`` is a refusal no retry cures, else None."""
    code = exc.code if isinstance(exc, StoreError) else type(exc).__name__
    if code == "NoSuchBucket":
        return (f"the lake {url} has no bucket ({code} on a probe put of {key}): create it "
                "with `trailpipe lake init`")
    if code in DENIED_CODES or isinstance(exc, PermissionError):
        return (f"the lake {url} denies {daemon}'s writes ({code} on a probe put of {key}): "
                "check the credentials and the bucket policy (`trailpipe lake status`): over "
                "plain HTTP a TLS-only policy denies every request (`[lake] "
                "deny_insecure_transport = false`), and an S3 API that ignores policy "
                "conditions (moto) denies every put under any Deny (also `[lake] "
                "deny_unencrypted_puts = false`); then run `trailpipe lake init` again")
    return None


def topic_problems(admin: Any, names: Iterable[str], timeout_s: float = 10.0) -> list[str]:
    """One line per topic of ``names`` the daemon cannot use: missing (create it), or denied
    to this principal (an ACL). ``admin`` is an AdminClient; DescribeTopics creates nothing,
    even where the broker auto-creates topics. Raises KafkaException when the cluster does not
    answer (or answers with another error)."""
    wanted = list(dict.fromkeys(names))
    futures = admin.describe_topics(TopicCollection(wanted), request_timeout=timeout_s)
    problems: list[str] = []
    for name in wanted:
        try:
            futures[name].result()
        except KafkaException as exc:
            code = exc.args[0].code() if exc.args else None
            if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                problems.append(f"topic {name} does not exist; create the documented topics "
                                "with `trailpipe topics create`")
            elif code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                problems.append(f"topic {name}: the cluster denies this principal (grant "
                                "DESCRIBE and READ or WRITE on it, or fix the credentials in "
                                "[kafka])")
            else:
                raise
    return problems
