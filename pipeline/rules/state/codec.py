"""The changelog form of a stage's state: one entry per state key, compact and versioned.

State keys are unique within one :class:`~pipeline.rules.state.stage.Stage` (so a Stage's
entries go to the changelog partition of its own number, or under a per-partition prefix):

- ``w``: the stage itself (its watermark);
- ``r\\x1f<rule id>\\x1f<window start ms>\\x1f<dedup key>``: a rule's dedup window;
- ``c\\x1f<correlation id>\\x1f<group key>``: a correlation group.

Ids must not contain ``\\x1f``; keys may (group keys are joined with it). A value is an orjson
array whose first element is the format version; decoding any other version raises
:class:`StateDecodeError`. Round trips are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.changelog import load_versioned
from pipeline.rules.state.correlate import Group, Item
from pipeline.rules.state.windows import Window, WindowId

VERSION = 1
META_KEY = "w"
_SEP = "\x1f"

StateId = tuple[str, str, str, int]
"""("r", rule id, dedup key, window start) or ("c", correlation id, group key, 0)."""


class StateDecodeError(ValueError):
    """A changelog entry this build cannot read."""


def state_key(sid: StateId) -> str:
    kind, target, key, start_ms = sid
    if kind == "r":
        return f"r{_SEP}{target}{_SEP}{start_ms}{_SEP}{key}"
    return f"c{_SEP}{target}{_SEP}{key}"


def parse_key(text: str) -> StateId | None:
    """The state id a changelog key names; None for :data:`META_KEY`."""
    if text == META_KEY:
        return None
    try:
        if text.startswith("r" + _SEP):
            _, target, start, key = text.split(_SEP, 3)
            return ("r", target, key, int(start))
        if text.startswith("c" + _SEP):
            _, target, key = text.split(_SEP, 2)
            return ("c", target, key, 0)
    except ValueError:
        pass
    raise StateDecodeError(f"not a state key: {text!r}")


def _load(value: bytes) -> list[Any]:
    return load_versioned(value, VERSION, StateDecodeError, "state entry")


def encode_meta(watermark_ms: int) -> bytes:
    return orjson.dumps([VERSION, watermark_ms])


def decode_meta(value: bytes) -> int:
    """The watermark, ms."""
    return int(_load(value)[1])


def encode_window(window: Window) -> bytes:
    return orjson.dumps([
        VERSION, window.count, window.first_ms, window.last_ms, window.update,
        window.pending, window.samples, window.account, window.region, window.principal,
        window.source_ip, window.title, window.severity, dict(window.context)])


def decode_window(value: bytes) -> Window:
    fields = _load(value)
    window = Window.__new__(Window)
    (_, window.count, window.first_ms, window.last_ms, window.update, window.pending,
     window.samples, window.account, window.region, window.principal, window.source_ip,
     window.title, window.severity, window.context) = fields
    return window


def encode_group(group: Group, rules: tuple[str, ...]) -> bytes:
    """Hits name their rule by id, so a reordered ``rules`` list restores correctly."""
    hits = [[time_ms, rules[rank], event_id, value]
            for time_ms, rank, event_id, value in group.hits]
    return orjson.dumps([VERSION, group.fired_until_ms, list(group.who), hits])


def decode_group(value: bytes, ranks: Mapping[str, int]) -> Group:
    """The group; hits of rules the correlation no longer references are left out."""
    fields = _load(value)
    group = Group()
    group.fired_until_ms = int(fields[1])
    account, region, principal, source_ip = fields[2]
    group.who = (account, region, principal, source_ip)
    hits: list[Item] = [(time_ms, ranks[rule], event_id, item_value)
                        for time_ms, rule, event_id, item_value in fields[3] if rule in ranks]
    group.hits = sorted(hits, key=lambda item: item[:3])
    return group


def window_state(wid: WindowId) -> StateId:
    return ("r", wid[0], wid[1], wid[2])
