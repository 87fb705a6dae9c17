"""No silent lock-outs: ``lake init`` refuses a TLS-only policy on a plain-HTTP endpoint, and
the lake probe turns a denied write into a one-line start-up refusal (an unreachable lake is
only logged: it may come back)."""

from __future__ import annotations

import pytest
from fakes import MemStore

from pipeline.lake.policy import LakePolicyConfig, bucket_policy, transport_problems
from pipeline.lake.store import StoreError, StoreUnavailable
from pipeline.startup import DestinationRefused, probe_lake_writes


def test_a_tls_only_policy_on_a_plain_http_endpoint_is_refused_naming_the_switch() -> None:
    problems = transport_problems(LakePolicyConfig(), "http://127.0.0.1:9000")
    assert problems and "http://127.0.0.1:9000 is plain HTTP" in problems[0]
    assert any("`[lake] deny_insecure_transport = false`" in p for p in problems)


@pytest.mark.parametrize(("deny", "endpoint"), [
    (True, "https://s3.example.com"), (True, None), (False, "http://127.0.0.1:9000")])
def test_tls_endpoints_aws_and_the_switched_off_policy_pass(deny: bool,
                                                            endpoint: str | None) -> None:
    assert transport_problems(LakePolicyConfig(deny_insecure_transport=deny), endpoint) == []


def test_the_switched_off_policy_keeps_the_encryption_statement_only() -> None:
    policy = bucket_policy(LakePolicyConfig(deny_insecure_transport=False), "b")
    assert policy is not None
    assert [s["Sid"] for s in policy["Statement"]] == ["DenyUnencryptedPuts"]


def test_the_probe_writes_under_probe_and_leaves_nothing() -> None:
    store = MemStore()
    probe_lake_writes(store, "archiver")
    assert [key for key, _ in store.puts] == ["_probe/archiver"] and store.objects == {}


@pytest.mark.parametrize("code", ["AccessDenied", "403", "InvalidAccessKeyId"])
def test_a_denied_probe_refuses_the_start_with_the_switch_named(code: str) -> None:
    store = MemStore()
    store.fail = StoreError("_probe/archiver: denied", code)
    with pytest.raises(DestinationRefused, match="deny_insecure_transport = false") as raised:
        probe_lake_writes(store, "archiver")
    assert f"mem://lake denies archiver's writes ({code}" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_bucket_refuses_the_start_naming_lake_init() -> None:
    store = MemStore()
    store.fail = StoreError("_probe/archiver: no bucket", "NoSuchBucket")
    with pytest.raises(DestinationRefused, match=r"has no bucket .*`trailpipe lake init`"):
        probe_lake_writes(store, "archiver")


@pytest.mark.parametrize("error", [StoreUnavailable("down", "EndpointConnectionError"),
                                   StoreError("odd", "InvalidRequest")])
def test_an_unreachable_or_odd_lake_does_not_refuse_the_start(error: StoreError) -> None:
    store = MemStore()
    store.fail = error
    probe_lake_writes(store, "archiver")  # logged; the daemon starts and backpressures
    assert store.puts == []


class _NoDeletes(MemStore):
    def delete(self, key: str) -> None:
        raise StoreError(key, "AccessDenied")


def test_a_lake_that_keeps_objects_is_not_refused() -> None:
    store = _NoDeletes()
    probe_lake_writes(store, "archiver")
    assert list(store.objects) == ["_probe/archiver"]


def test_the_default_policy_denies_plain_http_and_unencrypted_puts() -> None:
    """What ``lake init`` applies on an https endpoint (moto, over plain HTTP, cannot hold it:
    the integration tests run with both switches off)."""
    policy = bucket_policy(LakePolicyConfig(), "b")
    assert policy is not None
    sids = {st["Sid"]: st for st in policy["Statement"]}
    assert sids["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sids["DenyInsecureTransport"]["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    assert sids["DenyUnencryptedPuts"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption": "true"}}
