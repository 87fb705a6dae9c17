"""The forwarders' input: one CloudTrail record per message, as JSON; and the one processor
both forwarders use (record → the bytes their sink sends).

A value that is not a JSON object (a tombstone, bytes that are not JSON, a JSON array, ``NaN``)
or whose rendering exceeds the destination's size limit makes :meth:`Formatter.process` raise
:class:`NotForwardable`, so the Runner dead-letters it with that reason; nothing is truncated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.model import Event, StatelessProcessor

Render = Callable[[dict[str, Any]], bytes]


class NotForwardable(ValueError):
    """A record the forwarder cannot send as it is (the reason is the message)."""


def _no_constant(name: str) -> Any:
    raise NotForwardable(f"not a CloudTrail record: JSON has no {name}")


def parse_record(raw: bytes | None) -> dict[str, Any]:
    """The CloudTrail record a message value holds. Raises NotForwardable."""
    if raw is None:
        raise NotForwardable("not a CloudTrail record: the value is empty (a tombstone)")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if isinstance(exc, NotForwardable):
            raise
        raise NotForwardable(f"not a CloudTrail record: not JSON ({exc})") from None
    if type(value) is not dict:
        raise NotForwardable(f"not a CloudTrail record: a JSON {type(value).__name__}, "
                             "not an object")
    return value


def compact_json(record: dict[str, Any]) -> str:
    """The record as one line of compact JSON (UTF-8 text kept, control characters escaped:
    the line holds no line break)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class Formatter(StatelessProcessor):
    """Per record: parse the value, ``render`` it, check the size. Outputs the rendered bytes
    (one per record); raises NotForwardable (→ dead letter) as the module docstring says.
    ``max_bytes`` None: no limit; ``limit_hint`` is appended to the too-long reason."""

    def __init__(self, render: Render, *, max_bytes: int | None = None,
                 limit_hint: str = "") -> None:
        self._render = render
        self._max_bytes = max_bytes
        self._hint = limit_hint

    def process(self, event: Event) -> Iterable[Any]:
        raw = event.raw if event.raw is not None else event.value
        try:
            data = self._render(parse_record(raw))
        except UnicodeEncodeError as exc:  # a lone surrogate from a \ud800 escape
            raise NotForwardable(f"not forwardable: text is not valid Unicode ({exc})") from None
        if self._max_bytes is not None and len(data) > self._max_bytes:
            raise NotForwardable(f"message of {len(data)} bytes exceeds max_message_bytes="
                                 f"{self._max_bytes}; not truncated{self._hint}")
        return [data]
