"""Offline evaluation of rules over CloudTrail records: the retro-hunt behind ``trailpipe rules
eval``. No Kafka: records go through stage 1 (:meth:`RuleSet.hits`) and one in-memory
:class:`~pipeline.rules.state.stage.Stage`, in the order they are fed.

What makes a :class:`Match`, the alerter's semantics applied to one ordered stream:

- a rule with threshold 1 that alerts on its own: every matching event (no dedup: a hunt wants
  each one);
- a rule with a threshold above 1: the event that brings a dedup window to the threshold (its
  alert opens), with the window's eventIDs so far;
- a correlation that alerts on its own (Sigma ``generate``): each window that fires, with all
  its eventIDs (up to ``sample_size``); a correlation fed by another correlation lists the
  inner correlation's eventIDs in place of the inner alert.

Windows run on event time with the alerter's grace: a hit older than the newest event time seen
minus ``grace_ms`` is late and dropped (counted in :meth:`Evaluator.stats`). Windows decided at
their close (``lt``/``lte``/``eq``/``neq`` conditions) close as event time passes their end +
grace, and the rest close at :meth:`Evaluator.finish` (the input has ended).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.events.mapping import parse_event_time
from pipeline.rules.model import AlertDraft, Hit
from pipeline.rules.ruleset import RuleSet
from pipeline.rules.state.correlate import closes_at_end
from pipeline.rules.state.stage import Stage

EVAL_SAMPLE_SIZE = 10_000
"""eventIDs listed per threshold or correlation match (the alerter keeps far fewer)."""

_END_OF_INPUT_MS = 2**62
"""Event time of the end-of-input marker, past every window's end + grace."""


@dataclass(frozen=True, slots=True)
class Match:
    """One line of ``rules eval`` output. ``event_id`` is the event that made the match (the
    matching event, the one that reached the threshold, the one that fired the correlation, or
    for a window decided at its close, the window's last); ``event_ids`` is set for threshold
    and correlation matches."""

    rule_id: str
    title: str
    event_id: str
    severity: str
    event_ids: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "title": self.title,
                               "eventID": self.event_id, "severity": self.severity}
        if self.event_ids is not None:
            out["eventIDs"] = list(self.event_ids)
        return out


class Evaluator:
    """Feeds records, in order, through a RuleSet and one Stage; see the module docstring."""

    def __init__(self, ruleset: RuleSet, *, grace_ms: int, max_keys: int,
                 sample_size: int = EVAL_SAMPLE_SIZE) -> None:
        self._ruleset = ruleset
        metas = {rid: rule.meta for rid, rule in ruleset.rules.items()}
        self._stage = Stage(metas, ruleset.correlations, grace_ms=grace_ms, max_keys=max_keys,
                            sample_size=sample_size)
        self._at_close = {cid for cid, spec in ruleset.correlations.items()
                          if closes_at_end(spec)}
        # eventID a chained hit carries -> the eventIDs of the inner correlation window.
        self._inner: dict[str, tuple[str, ...]] = {}
        self._counts = dict.fromkeys(("records", "matches"), 0)

    def feed(self, record: Mapping[str, Any]) -> list[Match]:
        """The matches one record makes. Raises ValueError when the record has no valid
        ``eventTime`` (windows need event time); the caller reports it and goes on."""
        time_ms, status = parse_event_time(dict(record))
        if time_ms is None:
            raise ValueError(f"eventTime is {status.lower()}")
        self._counts["records"] += 1
        out: list[Match] = []
        for hit in self._ruleset.hits(record):
            if hit.kind == "rule" and self._ruleset.meta(hit.target).threshold == 1:
                out.append(Match(hit.target, hit.title, hit.event_id, hit.severity))
            else:
                out.extend(self._observe(hit))
        self._stage.flush_updates()  # updates are not matches; this expires spent state
        self._counts["matches"] += len(out)
        return out

    def finish(self) -> list[Match]:
        """Close the windows still open that are decided at their close (the input ended).
        An end-of-input marker past every window moves event time on; the stage counts it
        as a hit for no known target and applies it to nothing."""
        if not self._at_close:
            return []
        marker = Hit(kind="correlation", target="", key="", rule_id="",
                     event_time_ms=_END_OF_INPUT_MS, event_id="")
        out = self._observe(marker)
        self._counts["matches"] += len(out)
        return out

    def stats(self) -> dict[str, int]:
        """Records evaluated, matches, late hits dropped, state evicted, rule errors."""
        stage = self._stage.stats()
        return {**self._counts, "late_dropped": stage["late_dropped"],
                "evicted": stage["evicted"], "rule_errors": sum(self._ruleset.errors.values())}

    def _observe(self, first: Hit) -> list[Match]:
        out: list[Match] = []
        queue = [first]
        while queue:
            hit = queue.pop(0)
            for draft in self._stage.observe(hit):
                if draft.kind == "correlation":
                    chained = self._ruleset.chained(draft)
                    for inner in chained:
                        self._inner[inner.event_id] = draft.sample_event_ids
                    queue.extend(chained)
                if self._ruleset.alerts_alone(draft.rule_id):
                    out.append(self._match(draft, hit))
        return out

    def _match(self, draft: AlertDraft, hit: Hit) -> Match:
        ids = draft.sample_event_ids
        if draft.kind == "correlation":
            ids = tuple(dict.fromkeys(i for own in ids for i in self._inner.get(own, (own,))))
        at_close = draft.kind == "correlation" and draft.rule_id in self._at_close
        event_id = ids[-1] if at_close and ids else hit.event_id
        return Match(draft.rule_id, draft.title, event_id, draft.severity, ids)


def evaluate(ruleset: RuleSet, records: Iterable[Mapping[str, Any]], *, grace_ms: int,
             max_keys: int) -> Iterator[Match]:
    """Every match over ``records`` (each with a valid eventTime), then the end-of-input
    closes."""
    evaluator = Evaluator(ruleset, grace_ms=grace_ms, max_keys=max_keys)
    for record in records:
        yield from evaluator.feed(record)
    yield from evaluator.finish()
