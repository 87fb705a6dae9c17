"""Configurable digest periods: the chain across period changes (hourly → 1 min → hourly, and
from version 1 hourly digests), ``validate_lake`` on such lakes (tampering, gaps, overlaps),
period arithmetic and keys, and the config bounds. In-memory store, no Kafka, no disk."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import MemStore
from pydantic import ValidationError

from consumers.digester import DigestProcessor, DigestSink
from pipeline.config import ConfigError, load_config
from pipeline.lake.digest.chain import find_head
from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import (
    ObjectEntry,
    SignedDigest,
    build_digest,
    iso_ms,
    parse_digest,
    parse_iso_ms,
    signing_payload,
)
from pipeline.lake.digest.period import (
    ALLOWED_PERIODS_MS,
    period_end,
    period_problem,
    start_of_digest_key,
)
from pipeline.lake.digest.verify import check_chain
from pipeline.lake.keys import fingerprint, trusted_keys
from pipeline.lake.layout import Delivery, digest_key
from pipeline.lake.validate import validate_lake
from pipeline.model import Event

H0 = parse_iso_ms("2024-03-10T08:00:00Z")
HOUR = 3_600_000
MIN = 60_000
KEY = Ed25519PrivateKey.from_private_bytes(b"p" * 32)
TRUSTED = trusted_keys([KEY.public_key()])
HOURLY = DigestConfig(close_grace_ms=60_000, startup_settle_ms=0)
MINUTELY = DigestConfig(period_ms=MIN, close_grace_ms=5_000, startup_settle_ms=0)


class Lake:
    """A store, an archiver stand-in (objects + delivery notices) and digester runs."""

    def __init__(self) -> None:
        self.store = MemStore()
        self.offset = 0
        self.now = H0
        self.keys: dict[str, str] = {}  # object name -> key

    def deliver(self, at_ms: int, name: str) -> Event:
        data = f"parquet {name}".encode()
        t = iso_ms(at_ms)
        key = (f"events/account=1/region=r/date={t[:10]}/hour={t[11:13]}/"
               f"audit.events.v1+0+{self.offset:019d}.parquet")
        self.store.put(key, data)
        self.keys[name] = key
        d = Delivery(self.store.url, key, hashlib.sha256(data).hexdigest(), len(data), 1,
                     "audit.events.v1", 0, self.offset, self.offset, at_ms, at_ms, at_ms)
        self.offset += 1
        raw = d.to_json()
        return Event(None, raw, 0, "deliveries", 0, self.offset - 1, raw=raw)

    def run(self, cfg: DigestConfig, deliveries: list[tuple[int, str]], now: int) -> list[str]:
        """A fresh digester (a restart, possibly with a new period) reads ``deliveries``,
        ticks at ``now`` and writes what it emits; returns the keys written."""
        proc = DigestProcessor(self.store, KEY, cfg, trusted=TRUSTED, batch_size=100,
                               clock=lambda _ms: self.now)
        for at, name in deliveries:
            proc.process(self.deliver(at, name))
        self.now = now
        sink = DigestSink(self.store)
        emitted = list(proc.tick(0))
        for d in emitted:
            sink.add(d, None)
        sink.flush()
        return [d.key for d in emitted]

    def digest(self, start_ms: int) -> SignedDigest:
        key = digest_key(start_ms)
        return parse_digest(key, self.store.objects[key])

    def listed(self, start_ms: int) -> list[str]:
        return [o.key for o in self.digest(start_ms).objects]


def kinds(report: Any) -> list[tuple[str, str]]:
    return sorted((p.kind, p.key) for p in report.problems if p.failure)


@pytest.fixture
def lake() -> Lake:
    """Hours 0 and 1 digested hourly; then 1-minute digests for 10:00 .. 10:05."""
    lk = Lake()
    assert lk.run(HOURLY, [(H0 + MIN, "a"), (H0 + HOUR + 5, "b")], H0 + 2 * HOUR + 61_000) \
        == [digest_key(H0), digest_key(H0 + HOUR)]
    t = H0 + 2 * HOUR
    written = lk.run(MINUTELY, [(t + 30_000, "c"), (t + 3 * MIN + 1_000, "d")],
                     t + 5 * MIN + 5_000)
    assert written == [digest_key(t + m * MIN) for m in range(5)]
    return lk


def test_a_chain_written_hourly_then_every_minute_validates(lake):
    t = H0 + 2 * HOUR
    assert digest_key(t + 3 * MIN) == "digests/2024/03/10/2024-03-10T10-03.json"
    first = lake.digest(t)
    assert (first.start_ms, first.end_ms, first.period_ms) == (t, t + MIN, MIN)
    assert first.doc["previous"]["key"] == digest_key(H0 + HOUR)  # the last hourly digest
    assert lake.digest(H0 + HOUR).period_ms == HOUR
    assert lake.listed(t) == [lake.keys["c"]] and lake.listed(t + 3 * MIN) == [lake.keys["d"]]
    assert lake.listed(t + MIN) == [] and lake.listed(t + 4 * MIN) == []
    report = validate_lake(lake.store, TRUSTED)
    assert report.ok, kinds(report)
    assert (report.digests, report.objects_verified, report.last_hour_ms) == (7, 4, t + 4 * MIN)
    ranged = validate_lake(lake.store, TRUSTED, from_ms=t, to_ms=t + 5 * MIN)
    assert ranged.ok and ranged.digests == 5


def test_back_to_hourly_closes_the_rest_of_the_hour_then_aligns(lake):
    t = H0 + 2 * HOUR
    written = lake.run(HOURLY, [(t + 10 * MIN, "e")], t + 2 * HOUR + 61_000)
    assert written == [digest_key(t + 5 * MIN), digest_key(t + HOUR)]
    bridge = lake.digest(t + 5 * MIN)  # 10:05 .. 11:00 under the 1-hour period
    assert (bridge.end_ms, bridge.period_ms) == (t + HOUR, HOUR)
    assert bridge.doc["previous"]["key"] == digest_key(t + 4 * MIN)
    assert lake.listed(t + 5 * MIN) == [lake.keys["e"]]
    assert (lake.digest(t + HOUR).start_ms, lake.digest(t + HOUR).end_ms) == (t + HOUR,
                                                                             t + 2 * HOUR)
    assert validate_lake(lake.store, TRUSTED).ok


def test_a_tampered_object_inside_a_one_minute_period_is_detected(lake):
    t = H0 + 2 * HOUR
    d = lake.keys["d"]
    lake.store.objects[d] += b"!"
    report = validate_lake(lake.store, TRUSTED)
    assert kinds(report) == [("modified", d)]
    assert digest_key(t + 3 * MIN) in report.problems[0].detail
    lake.store.objects[d] = b"parquet d"
    assert validate_lake(lake.store, TRUSTED).ok
    del lake.store.objects[lake.keys["c"]]
    assert kinds(validate_lake(lake.store, TRUSTED)) == [("missing", lake.keys["c"])]


def test_a_gap_in_the_chain_is_detected(lake):
    t = H0 + 2 * HOUR
    del lake.store.objects[digest_key(t + 2 * MIN)]
    report = validate_lake(lake.store, TRUSTED)
    assert kinds(report) == [("digest_missing", digest_key(t + 2 * MIN))]
    del lake.store.objects[digest_key(t + 3 * MIN)]  # two periods: one span
    report = validate_lake(lake.store, TRUSTED)
    assert kinds(report) == [("digest_missing", digest_key(t + 2 * MIN))]
    # d, listed only by the deleted digest, is in the newest digest's event hour: a note.
    assert [(p.kind, p.failure) for p in report.problems if p.key == lake.keys["d"]] \
        == [("pending", False)]
    [gap] = [p for p in report.problems if p.kind == "digest_missing"]
    assert f"{iso_ms(t + 2 * MIN)} .. {iso_ms(t + 4 * MIN)}" in gap.detail


def test_the_newest_minutes_deleted_are_caught_with_to(lake):
    t = H0 + 2 * HOUR
    for m in (3, 4):
        del lake.store.objects[digest_key(t + m * MIN)]
    report = validate_lake(lake.store, TRUSTED, to_ms=t + 5 * MIN)
    assert kinds(report) == [("digest_missing", digest_key(t + 3 * MIN))]
    assert validate_lake(lake.store, TRUSTED, to_ms=t + 3 * MIN).ok


def test_a_link_that_skips_a_period_or_an_overlapping_digest_is_named(lake):
    t = H0 + 2 * HOUR
    skip = build_digest(t + 2 * MIN, period_ms=MIN, lake=lake.store.url,
                        previous=lake.digest(H0 + HOUR).link, objects=[], compactions=[],
                        signer=KEY, signed_at_ms=t + 3 * MIN)
    lake.store.objects[skip.key] = skip.body  # signed with the real key, links to 09:00
    report = validate_lake(lake.store, TRUSTED)
    assert ("chain_gap", skip.key) in kinds(report)
    ds = [lake.digest(H0 + HOUR), lake.digest(t)]
    inside = build_digest(H0 + HOUR + 30 * MIN, period_ms=MIN, lake="x", previous=ds[0].link,
                          objects=[], compactions=[], signer=KEY, signed_at_ms=t)
    problems = check_chain([ds[0], inside, ds[1]], anchor=None, strict_start=False)
    assert ("digest_overlap", inside.key) in [(p.kind, p.key) for p in problems]


def v1_digest(start_ms: int, previous: SignedDigest | None,
              objects: list[ObjectEntry]) -> SignedDigest:
    """An hourly digest exactly as the format's version 1 wrote it."""
    doc: dict[str, Any] = {
        "version": 1, "hour_start": iso_ms(start_ms), "hour_end": iso_ms(start_ms + HOUR),
        "lake": "mem://lake",
        "previous": previous.link.to_dict() if previous else None,
        "objects": [asdict(o) for o in objects], "compactions": [],
        "public_key_fingerprint": fingerprint(KEY.public_key()),
        "signed_at": iso_ms(start_ms + HOUR)}
    doc["signature"] = base64.b64encode(KEY.sign(signing_payload(doc))).decode()
    body = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    return parse_digest(digest_key(start_ms), body)


def test_version_1_hourly_digests_continue_into_one_minute_digests():
    lk = Lake()
    lk.deliver(H0 + 5, "a")
    data = lk.store.objects[lk.keys["a"]]
    entry = ObjectEntry(lk.keys["a"], hashlib.sha256(data).hexdigest(), len(data), 1,
                        "audit.events.v1", 0, 0, 0)
    old = [v1_digest(H0, None, [entry])]
    old.append(v1_digest(H0 + HOUR, old[0], []))
    for d in old:
        lk.store.objects[d.key] = d.body
    assert (old[1].end_ms, old[1].period_ms) == (H0 + 2 * HOUR, HOUR)
    t = H0 + 2 * HOUR
    assert lk.run(MINUTELY, [(t + MIN + 1, "b")], t + 2 * MIN + 5_000) \
        == [digest_key(t), digest_key(t + MIN)]
    assert lk.digest(t).doc["previous"]["key"] == old[1].key
    assert validate_lake(lk.store, TRUSTED).ok
    lk.store.objects[lk.keys["a"]] = b"changed"
    assert kinds(validate_lake(lk.store, TRUSTED)) == [("modified", lk.keys["a"])]


def test_period_arithmetic_and_keys():
    assert [p // MIN for p in ALLOWED_PERIODS_MS] == [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]
    assert period_end(H0, HOUR) == H0 + HOUR and period_end(H0 + 7 * MIN, HOUR) == H0 + HOUR
    assert period_end(H0 + 20 * MIN, 15 * MIN) == H0 + 30 * MIN
    assert digest_key(H0) == "digests/2024/03/10/2024-03-10T08.json"  # hourly lakes unchanged
    for m in range(60):
        assert start_of_digest_key(digest_key(H0 + m * MIN)) == H0 + m * MIN
    assert start_of_digest_key("digests/2024/03/10/2024-03-10T08-00.json") is None
    assert start_of_digest_key("digests/2024/03/10/2024-03-10T08-60.json") is None
    assert start_of_digest_key("digests/2024/03/11/2024-03-10T08-05.json") is None


def test_a_digest_whose_span_disagrees_with_its_period_is_invalid():
    d = build_digest(H0 + 5 * MIN, period_ms=MIN, lake="l", previous=None, objects=[],
                     compactions=[], signer=KEY, signed_at_ms=H0)
    doc = dict(d.doc, end=iso_ms(H0 + 7 * MIN))
    doc["signature"] = base64.b64encode(KEY.sign(signing_payload(doc))).decode()
    lk = Lake()
    lk.store.objects[d.key] = json.dumps(doc).encode()
    assert kinds(validate_lake(lk.store, TRUSTED)) == [("digest_invalid", d.key)]
    with pytest.raises(ValueError, match="dividing an hour"):
        build_digest(H0, period_ms=7 * MIN, lake="l", previous=None, objects=[],
                     compactions=[], signer=KEY, signed_at_ms=H0)
    with pytest.raises(ValueError, match="whole minute"):
        build_digest(H0 + 1_000, period_ms=MIN, lake="l", previous=None, objects=[],
                     compactions=[], signer=KEY, signed_at_ms=H0)


@pytest.mark.parametrize("period_ms, message", [
    (0, "outside"), (30_000, "outside"), (59_999, "outside"), (2 * HOUR, "outside"),
    (7 * MIN, "dividing an hour evenly"), (45 * MIN, "dividing an hour evenly"),
    (72_000, "whole number of minutes"),
])
def test_config_rejects_periods_out_of_bounds_with_a_clear_error(period_ms, message):
    with pytest.raises(ValidationError, match=message):
        DigestConfig(period_ms=period_ms)
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRAILPIPE_DIGEST__PERIOD_MS": str(period_ms)})
    assert info.value.errors[0].startswith("digest.period_ms:")
    assert period_problem(period_ms) is not None


def test_config_accepts_every_allowed_period_and_defaults_to_an_hour():
    assert DigestConfig().period_ms == HOUR
    assert [DigestConfig(period_ms=p).period_ms for p in ALLOWED_PERIODS_MS] \
        == list(ALLOWED_PERIODS_MS)
    assert load_config(env={"TRAILPIPE_DIGEST__PERIOD_MS": "300000"}).digest.period_ms \
        == 5 * MIN


class CountingStore(MemStore):
    """Records every listing prefix."""

    def __init__(self) -> None:
        super().__init__()
        self.prefixes: list[str] = []

    def list(self, prefix: str = ""):  # type: ignore[no-untyped-def]
        self.prefixes.append(prefix)
        return super().list(prefix)


def test_the_head_is_found_from_the_newest_day_folders_first():
    store = CountingStore()
    chain: list[SignedDigest] = []
    for start in (H0 - 3 * 24 * HOUR, H0, H0 + 7 * MIN):  # three days ago, then today
        d = build_digest(start, period_ms=MIN, lake=store.url,
                         previous=chain[-1].link if chain else None, objects=[],
                         compactions=[], signer=KEY, signed_at_ms=start + MIN)
        chain.append(d)
        store.objects[d.key] = d.body
    head = find_head(store, H0 + 30 * MIN, TRUSTED)
    assert head is not None and head.key == chain[2].key
    assert store.prefixes == ["digests/2024/03/10/"]  # today's folder only
    store.prefixes.clear()
    head = find_head(store, H0 + 7 * MIN, TRUSTED)  # digests starting later are ignored
    assert head is not None and head.key == chain[1].key
    store.prefixes.clear()
    head = find_head(store, H0 - 24 * HOUR + 5 * MIN, TRUSTED)  # nothing that day or before
    assert head is not None and head.key == chain[0].key
    assert store.prefixes == ["digests/2024/03/09/", "digests/2024/03/08/", "digests/"]
