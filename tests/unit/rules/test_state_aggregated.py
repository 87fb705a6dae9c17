"""Aggregated hits (stage 1 folds a batch's matches of one dedup window into one hit): the
stage counts them as the matches they stand for, exactly as it counts them one by one."""

from __future__ import annotations

from dataclasses import replace

from test_state_rules import MIN_MS, T0_MS, hit, stage

from pipeline.rules.model import AlertDraft, Hit


def drafts(hits: list[Hit]) -> list[AlertDraft]:
    s = stage(threshold=3)
    out = [d for h in hits for d in s.observe(h)]
    return out + s.flush_updates()


def test_an_aggregated_hit_opens_and_updates_like_its_matches_one_by_one() -> None:
    single = [hit(T0_MS + i * MIN_MS, f"e{i}") for i in range(5)]
    folded = [replace(single[0], count=2, last_time_ms=T0_MS + MIN_MS, more_ids=("e1",)),
              replace(single[2], count=3, last_time_ms=T0_MS + 4 * MIN_MS,
                      more_ids=("e3", "e4"))]
    one_by_one, together = drafts(single), drafts(folded)
    assert [d.alert_id for d in together if d.update == 0] == [
        d.alert_id for d in one_by_one if d.update == 0]
    assert max(d.count for d in together) == max(d.count for d in one_by_one) == 5
    last = together[-1]
    assert (last.first_seen_ms, last.last_seen_ms) == (T0_MS, T0_MS + 4 * MIN_MS)
    assert last.sample_event_ids == ("e0", "e1")  # sample_size 2, first seen first


def test_an_aggregated_hit_is_late_only_when_its_newest_match_is() -> None:
    s = stage(threshold=1)
    s.observe(hit(T0_MS + 30 * MIN_MS, "now"))
    old_but_spanning = replace(hit(T0_MS, "old"), count=2, last_time_ms=T0_MS + 29 * MIN_MS,
                               more_ids=("recent",))
    assert s.observe(old_but_spanning) == []  # same window, already open: counted, no alert
    assert s.stats()["late_dropped"] == 0
    assert max(d.count for d in s.flush_updates()) == 3
