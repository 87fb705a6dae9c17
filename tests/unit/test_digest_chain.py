"""The digester's processor and sink, and ``validate_lake``, over an in-memory store: the
chain across hours and restarts, late and duplicate notices, compactions, and every tamper
kind. No Kafka, no disk."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import MemStore

from consumers.digester import DigestConflict, DigestProcessor, DigestSink
from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import Compaction, parse_iso_ms
from pipeline.lake.digest.verify import check_chain, event_hour
from pipeline.lake.keys import trusted_keys
from pipeline.lake.layout import Delivery, digest_key
from pipeline.lake.validate import validate_lake
from pipeline.model import Event

H0 = parse_iso_ms("2024-03-10T08:00:00Z")
HOUR = 3_600_000
KEY = Ed25519PrivateKey.from_private_bytes(b"k" * 32)
TRUSTED = trusted_keys([KEY.public_key()])
CFG = DigestConfig(close_grace_ms=60_000, startup_settle_ms=0)


class Lake:
    """A store, an archiver stand-in that writes objects and notices, and a digester."""

    def __init__(self) -> None:
        self.store = MemStore()
        self.offset = 0
        self.now = H0

    def deliver(self, at_ms: int, name: str, event_hour_ms: int | None = None) -> Event:
        data = f"parquet {name}".encode()
        t = event_hour_ms if event_hour_ms is not None else at_ms
        key = (f"events/account=1/region=r/date={_date(t)}/hour={_hh(t)}/"
               f"audit.events.v1+0+{self.offset:019d}.parquet")
        self.store.put(key, data)
        d = Delivery(self.store.url, key, hashlib.sha256(data).hexdigest(), len(data), 1,
                     "audit.events.v1", 0, self.offset, self.offset, t, t, at_ms)
        return self.event(d.to_json())

    def event(self, raw: bytes) -> Event:
        self.offset += 1
        return Event(None, raw, 0, "deliveries", 0, self.offset - 1, raw=raw)

    def processor(self) -> DigestProcessor:
        return DigestProcessor(self.store, KEY, CFG, trusted=TRUSTED, batch_size=100,
                               clock=lambda _ms: self.now)

    def run(self, proc: DigestProcessor, events: list[Event], now: int) -> list[str]:
        """Process events, then tick at ``now`` and write what it emits."""
        for e in events:
            proc.process(e)
        self.now = now
        sink = DigestSink(self.store)
        for d in proc.tick(0):
            sink.add(d, None)
        sink.flush()
        return sorted(k for k in self.store.objects if k.startswith("digests/"))

    def validate(self, **kw: int):
        return validate_lake(self.store, TRUSTED, **kw)


def _date(ms: int) -> str:
    from pipeline.lake.digest.model import iso_ms

    return iso_ms(ms)[:10]


def _hh(ms: int) -> str:
    from pipeline.lake.digest.model import iso_ms

    return iso_ms(ms)[11:13]


def kinds(report) -> list[tuple[str, str]]:
    return sorted((p.kind, p.key) for p in report.problems)


@pytest.fixture
def lake() -> Lake:
    """Deliveries in hours 0, 1 and 3 (none in 2), digested through hour 4."""
    lk = Lake()
    proc = lk.processor()
    events = [lk.deliver(H0 + 60_000, "a"), lk.deliver(H0 + 120_000, "b"),
              lk.deliver(H0 + HOUR + 5, "c"), lk.deliver(H0 + 3 * HOUR + 7, "d")]
    digests = lk.run(proc, events, H0 + 5 * HOUR + 61_000)
    assert digests == [digest_key(H0 + h * HOUR) for h in range(5)]
    assert proc.pending_low_offsets() == {}
    return lk


def listed(lk: Lake, hour: int) -> list[str]:
    return [o["key"] for o in json.loads(lk.store.objects[digest_key(H0 + hour * HOUR)])
            ["objects"]]


def test_hours_close_in_order_with_empty_hours_and_a_clean_validate(lake):
    assert len(listed(lake, 0)) == 2 and len(listed(lake, 1)) == 1
    assert listed(lake, 2) == [] and len(listed(lake, 3)) == 1 and listed(lake, 4) == []
    first = json.loads(lake.store.objects[digest_key(H0)])
    assert first["previous"] is None
    report = lake.validate()
    assert report.ok, kinds(report)
    assert (report.digests, report.objects_verified, report.objects_scanned) == (5, 4, 4)


def test_open_hours_hold_offsets_until_closed():
    lk = Lake()
    proc = lk.processor()
    events = [lk.deliver(H0 + 10, "a"), lk.deliver(H0 + HOUR + 10, "b")]
    lk.run(proc, events, H0 + HOUR + 30_000)  # hour 0 within its grace: nothing closes
    assert proc.pending_low_offsets() == {("deliveries", 0): 0}
    lk.run(proc, [], H0 + HOUR + 61_000)  # hour 0 closes, hour 1 is open
    assert proc.pending_low_offsets() == {("deliveries", 0): 1}


def test_restart_continues_the_chain_and_skips_redelivered_notices(lake):
    again = lake.processor()
    late = lake.deliver(H0 + 3 * HOUR + 9, "late")  # its hour (3) is already closed
    redelivered = lake.event(late.raw or b"")  # the archiver published it twice
    digests = lake.run(again, [late, redelivered], H0 + 7 * HOUR + 61_000)
    assert digests[-2:] == [digest_key(H0 + 5 * HOUR), digest_key(H0 + 6 * HOUR)]
    assert listed(lake, 5) == [json.loads(late.raw)["key"]]  # first open hour, listed once
    # After a crash the uncommitted notices are re-read; a recent digest lists them already.
    third = lake.processor()
    dup = lake.event(late.raw or b"")
    lake.run(third, [dup], H0 + 8 * HOUR + 61_000)
    assert listed(lake, 7) == []  # already listed in hour 5's digest
    assert lake.validate().ok


def test_a_failed_flush_resyncs_from_the_lake(lake):
    proc = lake.processor()
    e = lake.deliver(H0 + 5 * HOUR + 1, "e")
    proc.process(e)
    lake.now = H0 + 6 * HOUR + 61_000
    lost = list(proc.tick(0))  # emitted, never written (the Runner discards, then drops)
    assert [d.key for d in lost] == [digest_key(H0 + 5 * HOUR)]
    proc.drop([("deliveries", 0)])
    assert proc.pending_low_offsets() == {}
    lake.run(proc, [e], lake.now)
    assert listed(lake, 5) == [json.loads(e.raw)["key"]]
    assert lake.validate().ok


def test_sink_is_idempotent_and_refuses_to_replace(lake):
    proc = lake.processor()
    lake.now = H0 + 6 * HOUR + 61_000
    [d] = proc.tick(0)
    sink = DigestSink(lake.store)
    sink.add(d, None)
    sink.flush()
    sink.add(d, None)
    sink.flush()  # the same bytes again: a retried put
    lake.store.objects[d.key] += b" "
    sink.add(d, None)
    with pytest.raises(DigestConflict):
        sink.flush()


def test_the_chain_is_not_continued_from_an_untrusted_head(lake):
    other = Ed25519PrivateKey.generate()
    proc = DigestProcessor(lake.store, other, CFG, trusted=trusted_keys([other.public_key()]),
                           batch_size=100, clock=lambda _ms: H0 + 9 * HOUR)
    assert list(proc.tick(0)) == []  # logged digest_chain_unavailable, retried next tick


def test_notices_for_another_lake_and_poison_records():
    lk = Lake()
    proc = lk.processor()
    d = Delivery("s3://other/lake", "events/x", "00", 1, 1, "t", 0, 0, 0, H0, H0, H0)
    assert list(proc.process(lk.event(d.to_json()))) == []
    assert proc.pending_low_offsets() == {}
    with pytest.raises(ValueError):
        proc.process(lk.event(b"not json"))


@pytest.mark.parametrize("tamper, expected", [
    ("modify", [("modified", "a")]),
    ("delete", [("missing", "b")]),
    ("add", [("unlisted", "extra")]),
    ("delete_digest", [("digest_missing", "d2")]),
    ("signature", [("bad_signature", "d1"), ("chain_broken", "d2")]),
    ("replace_digest", [("chain_broken", "d2"), ("untrusted_key", "d1")]),
])
def test_tampering_is_named(lake, tamper, expected):
    a, b = listed(lake, 0)
    s = lake.store.objects
    names = {"a": a, "b": b, "d1": digest_key(H0 + HOUR), "d2": digest_key(H0 + 2 * HOUR),
             "extra": "events/account=1/region=r/date=2024-03-10/hour=09/x.parquet"}
    if tamper == "modify":
        s[a] = s[a] + b"!"
    elif tamper == "delete":
        del s[b]
    elif tamper == "add":
        s[names["extra"]] = b"injected"
    elif tamper == "delete_digest":
        del s[names["d2"]]
    elif tamper == "signature":
        doc = json.loads(s[names["d1"]])
        doc["signature"] = doc["signature"][:-4] + ("AAA=" if doc["signature"][-4:] != "AAA="
                                                    else "BBB=")
        s[names["d1"]] = json.dumps(doc).encode()
    elif tamper == "replace_digest":  # re-signed by an attacker's own key
        from pipeline.lake.digest.model import build_digest, parse_digest

        old = parse_digest(names["d1"], s[names["d1"]])
        forged = build_digest(H0 + HOUR, period_ms=HOUR,
                              lake="x", previous=None, objects=old.objects,
                              compactions=[], signer=Ed25519PrivateKey.generate(),
                              signed_at_ms=H0)
        s[names["d1"]] = forged.body
        expected = [*expected, ("chain_gap", "d1")]
    report = lake.validate()
    assert not report.ok
    assert kinds(report) == sorted((k, names[n]) for k, n in expected)


def test_first_digest_deleted_is_caught_without_from_but_not_with(lake):
    del lake.store.objects[digest_key(H0)]
    assert kinds(lake.validate()) == [("digest_missing", digest_key(H0)),
                                      *sorted(("unlisted", k) for k in
                                              ["events/account=1/region=r/date=2024-03-10/"
                                               f"hour=08/audit.events.v1+0+{i:019d}.parquet"
                                               for i in (0, 1)])]
    ranged = lake.validate(from_ms=H0 + HOUR)
    assert ranged.ok and [p.kind for p in ranged.problems] == ["chain_start_unverified"]


def test_to_requires_every_hour_and_bounds_object_checks(lake):
    assert lake.validate(to_ms=H0 + 5 * HOUR).ok
    report = lake.validate(to_ms=H0 + 7 * HOUR)
    assert kinds(report) == [("digest_missing", digest_key(H0 + 5 * HOUR))]  # one span
    assert "2024-03-10T13:00:00.000Z .. 2024-03-10T15:00:00.000Z" in report.problems[0].detail
    del lake.store.objects[listed(lake, 3)[0]]
    assert lake.validate(to_ms=H0 + 3 * HOUR).ok  # hour 3's objects are out of range
    assert not lake.validate().ok


def test_objects_newer_than_the_newest_digest_are_pending(lake):
    lake.store.put("events/account=1/region=r/date=2024-03-10/hour=12/y.parquet", b"y")
    report = lake.validate()
    assert report.ok and [p.kind for p in report.problems] == ["pending"]


def test_compaction_keeps_validate_green(lake):
    a, b = listed(lake, 0)
    merged = lake.deliver(H0 + 5 * HOUR + 100, "merged", event_hour_ms=H0)
    key = json.loads(merged.raw)["key"]
    notice = Compaction(lake.store.url, (a, b), (key,), H0 + 5 * HOUR + 200)
    del lake.store.objects[a], lake.store.objects[b]
    proc = lake.processor()
    lake.run(proc, [merged, lake.event(notice.to_json())], H0 + 6 * HOUR + 61_000)
    doc = json.loads(lake.store.objects[digest_key(H0 + 5 * HOUR)])
    assert doc["compactions"] == [{"replaced": [a, b], "by": [key]}]
    assert lake.validate().ok
    # A compaction whose replacement never got listed is a failure.
    ghost = Compaction(lake.store.url, (listed(lake, 1)[0],), ("events/ghost",), H0 + 6 * HOUR)
    lake.run(proc, [lake.event(ghost.to_json())], H0 + 7 * HOUR + 61_000)
    assert kinds(lake.validate()) == [("replacement_unlisted", "events/ghost")]


def test_chain_rules_on_gaps_and_restarts(lake):
    from pipeline.lake.digest.model import parse_digest

    ds = [parse_digest(k, lake.store.objects[k]) for k in sorted(lake.store.objects)
          if k.startswith("digests/")]
    assert check_chain(ds, anchor=None, strict_start=True) == []
    gap = check_chain([ds[0], ds[2]], anchor=None, strict_start=True)
    assert [(p.kind, p.key) for p in gap] == [("digest_missing", ds[1].key)]
    restart = check_chain([ds[1], ds[0]], anchor=None, strict_start=True)
    assert {p.kind for p in restart} >= {"chain_gap"}
    assert event_hour("events/account=1/region=r/date=2024-03-10/hour=09/x") == H0 + HOUR
    assert event_hour("events/odd.parquet") is None


def test_empty_lake_is_clean_and_objects_without_digests_are_not():
    lk = Lake()
    assert lk.validate().ok
    lk.deliver(H0, "a")
    assert [p.kind for p in lk.validate().problems] == ["unlisted"]


def test_no_hour_closes_before_settling_or_while_behind():
    lk = Lake()
    mono = iter([0.0, 1.0, 100.0, 100.0, 100.0])
    proc = DigestProcessor(lk.store, KEY, DigestConfig(close_grace_ms=0, startup_settle_ms=5000),
                           trusted=TRUSTED, batch_size=2, clock=lambda _ms: lk.now,
                           monotonic=lambda: next(mono))
    lk.now = H0 + 3 * HOUR + 5
    assert list(proc.tick(0)) == []  # 1 s after start, nothing read yet: not settled
    assert list(proc.tick(0)) == []  # settled: an empty lake's chain starts at the current hour
    lk.now = H0 + 4 * HOUR
    for _ in range(2):  # a full batch: still behind, no hour closes
        proc.process(lk.deliver(H0 + 3 * HOUR + 10, "x"))
    assert list(proc.tick(0)) == []
    [d] = proc.tick(0)  # caught up
    assert d.key == digest_key(H0 + 3 * HOUR) and len(d.doc["objects"]) == 2


def test_an_object_rewritten_back_to_older_content_is_listed_again(lake):
    a = listed(lake, 0)[0]
    original = lake.store.objects[a]
    notice = json.loads(lake.deliver(H0 + 5 * HOUR, "tmp").raw or b"")
    lake.store.delete(notice["key"])  # only its notice is used, as a template

    def redeliver(data: bytes, at: int) -> Event:
        lake.store.objects[a] = data
        return lake.event(json.dumps({**notice, "key": a, "size_bytes": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest(),
                                      "delivered_at_ms": at}).encode())

    proc = lake.processor()
    lake.run(proc, [redeliver(b"v2", H0 + 5 * HOUR + 1)], H0 + 6 * HOUR + 61_000)
    lake.run(proc, [redeliver(original, H0 + 6 * HOUR + 1)], H0 + 7 * HOUR + 61_000)
    assert a in listed(lake, 5) and a in listed(lake, 6)
    assert lake.validate().ok
