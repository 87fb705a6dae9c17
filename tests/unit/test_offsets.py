"""Offset bookkeeping: commit = min(last processed + 1, oldest held), rewinds never skip."""

from __future__ import annotations

from pipeline.offsets import OffsetLedger

TP = ("audit.events.v1", 0)
TP2 = ("audit.events.v1", 1)


def test_commit_is_last_processed_plus_one() -> None:
    ledger = OffsetLedger()
    for off in range(10, 15):
        ledger.processed(TP, off)
    assert ledger.commit_plan({}) == {TP: 15}


def test_commit_held_back_by_processor_state() -> None:
    ledger = OffsetLedger()
    for off in range(0, 100):
        ledger.processed(TP, off)
    ledger.processed(TP2, 7)
    assert ledger.commit_plan({TP: 42}) == {TP: 42, TP2: 8}


def test_only_forward_moves_are_planned() -> None:
    ledger = OffsetLedger()
    ledger.processed(TP, 0)
    plan = ledger.commit_plan({})
    ledger.mark_committed(plan)
    assert not ledger.has_uncommitted()
    assert ledger.commit_plan({}) == {}
    ledger.processed(TP, 1)
    assert ledger.has_uncommitted()
    assert ledger.commit_plan({}) == {TP: 2}


def test_rewind_goes_to_committed_or_first_seen() -> None:
    ledger = OffsetLedger()
    ledger.processed(TP, 5)
    ledger.processed(TP, 6)
    ledger.processed(TP2, 0)
    ledger.mark_committed({TP2: 1})
    ledger.processed(TP2, 1)
    targets = ledger.rewind_targets([TP, TP2])
    # Nothing committed on TP yet: go back to the first offset seen since assignment.
    assert targets == {TP: 5, TP2: 1}
    assert ledger.commit_plan({}) == {}
    assert not ledger.has_uncommitted()


def test_forget_drops_partition() -> None:
    ledger = OffsetLedger()
    ledger.processed(TP, 3)
    ledger.forget([TP])
    assert ledger.commit_plan({}) == {}
    assert ledger.rewind_targets([TP]) == {}
