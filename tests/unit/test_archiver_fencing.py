"""Owner records: tokens, declared ranges, progress, and fencing of stale writers (pure)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fakes import MemStore

from pipeline.lake.fencing import Fenced, Fencing
from pipeline.lake.layout import owner_key
from pipeline.lake.store import PreconditionFailed, StoreError


class Clock:
    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def record(store: MemStore, partition: int = 0) -> dict[str, object]:
    doc: dict[str, object] = json.loads(store.objects[owner_key("t", partition)])
    return doc


def test_acquire_creates_then_bumps_the_token_keeping_progress() -> None:
    store, clock = MemStore(), Clock()
    a = Fencing(store, "a", clock).acquire("t", 0)
    assert (a.token, a.next_offset, a.pending_end) == (1_000, None, None)
    a = Fencing(store, "a", clock).complete(Fencing(store, "a", clock).declare(a, 50))
    assert record(store)["next_offset"] == 50
    b = Fencing(store, "b", clock).acquire("t", 0)  # same clock: token + 1
    assert (b.token, b.next_offset, b.owner) == (1_001, 50, "b")
    clock.now = 5_000
    assert Fencing(store, "c", clock).acquire("t", 0).token == 5_000


def test_a_stale_writer_is_fenced_at_every_step() -> None:
    store = MemStore()
    old = Fencing(store, "old").acquire("t", 0)
    new = Fencing(store, "new").acquire("t", 0)
    assert new.token > old.token
    for step in (lambda: Fencing(store, "old").verify(old),
                 lambda: Fencing(store, "old").declare(old, 10)):
        with pytest.raises(Fenced):
            step()
    declared = Fencing(store, "new").declare(new, 10)
    Fencing(store, "new").verify(declared)
    with pytest.raises(Fenced):  # completing with a lease the newer writer replaced
        Fencing(store, "old").complete(replace(old, pending_end=10))


def test_a_declared_range_survives_takeover_until_completed() -> None:
    store = MemStore()
    a = Fencing(store, "a").declare(Fencing(store, "a").acquire("t", 3), 120)
    b = Fencing(store, "b").acquire("t", 3)
    assert (b.next_offset, b.pending_end) == (None, 120)
    with pytest.raises(ValueError):
        Fencing(store, "b").declare(b, 200)
    with pytest.raises(Fenced):
        Fencing(store, "a").complete(a)
    b = Fencing(store, "b").complete(b)
    assert (b.next_offset, b.pending_end) == (120, None)
    assert record(store, 3)["next_offset"] == 120


def test_a_vanished_record_fences_and_contention_gives_up() -> None:
    store = MemStore()
    lease = Fencing(store, "a").acquire("t", 0)
    store.delete(owner_key("t", 0))
    with pytest.raises(Fenced):
        Fencing(store, "a").verify(lease)
    with pytest.raises(Fenced):
        Fencing(store, "a").declare(lease, 5)

    class Contended(MemStore):
        def put(self, key: str, data: bytes, **kw: object) -> str:
            raise PreconditionFailed(key, "PreconditionFailed")

    with pytest.raises(Fenced, match="contended"):
        Fencing(Contended(), "a").acquire("t", 0)


def test_store_errors_pass_through() -> None:
    store = MemStore()
    store.fail = StoreError("bucket: AccessDenied", "AccessDenied")
    with pytest.raises(StoreError) as exc:
        Fencing(store, "a").acquire("t", 0)
    assert exc.value.code == "AccessDenied" and not isinstance(exc.value, Fenced)
