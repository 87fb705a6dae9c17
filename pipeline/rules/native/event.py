"""The event a native rule sees: CloudTrail JSON with forgiving lookups.

``event["eventName"]``, ``event.get("eventname")`` and ``event.deep_get("userIdentity",
"type")`` all work: keys are looked up exactly first, then case-insensitively (Panther's test
events sometimes lower-case keys). Members that arrive as JSON text (``requestParameters``,
``responseElements``, ``additionalEventData``, ``serviceEventDetails`` as some sources send
them) are parsed on first access, so a path walks into them. Nested objects come back as
:class:`CloudTrailEvent` too, so every level behaves the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

_MISSING = object()
_SCALARS = frozenset({int, float, bool})
_JSON_TEXT = frozenset({"requestparameters", "responseelements", "additionaleventdata",
                        "serviceeventdetails"})


def _wrap(value: Any) -> Any:
    # Plain types first: an isinstance against the Mapping ABC is slow on the hot path.
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return CloudTrailEvent(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, Mapping) and not isinstance(value, CloudTrailEvent):
        return CloudTrailEvent(value)
    return value


def _maybe_json(key: str, value: Any) -> Any:
    if isinstance(value, str) and key.lower() in _JSON_TEXT and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class CloudTrailEvent(Mapping[str, Any]):
    """A read-only view of one CloudTrail record (or a nested object of one)."""

    __slots__ = ("_data", "_folded", "_seen")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._folded: dict[str, str] | None = None
        # Values already parsed and wrapped, by key as asked: many rules read the same few
        # members of one event, so each is converted once.
        self._seen: dict[str, Any] = {}

    def _key(self, key: str) -> str | None:
        if key in self._data:
            return key
        if self._folded is None:
            self._folded = {k.casefold(): k for k in self._data}
        return self._folded.get(key.casefold())

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """``event[key]``, or ``default`` when absent (without raising inside: rules probe
        for absent keys all the time)."""
        data = self._data
        if key in data:  # the common case: a plain value under its exact name, returned as is
            value = data[key]
            kind = value.__class__
            if value is None or kind in _SCALARS or (kind is str and value[:1] not in "{["):
                return value
        seen = self._seen
        if key in seen:
            value = seen[key]
            return default if value is _MISSING else value
        real = self._key(key)
        if real is None:
            seen[key] = _MISSING
            return default
        value = seen[key] = _wrap(_maybe_json(real, self._data[real]))
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) is not None

    def deep_get(self, *keys: str, default: Any = None) -> Any:
        """The value at the path ``keys`` (each level case-insensitive), or ``default`` when a
        level is missing, null or not an object."""
        value: Any = self
        for key in keys:
            if not isinstance(value, CloudTrailEvent):
                return default
            value = value.get(key)
            if value is None:
                return default
        return value

    def raw(self) -> Mapping[str, Any]:
        """The underlying record, unchanged."""
        return self._data


def deep_get(event: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """:meth:`CloudTrailEvent.deep_get` for any mapping."""
    view = event if isinstance(event, CloudTrailEvent) else CloudTrailEvent(event)
    return view.deep_get(*keys, default=default)
