"""Per-SIEM views: which mirrored records a subscription's view holds, and what it hides.

A :class:`ViewEncoder` serves one :class:`~pipeline.siem.model.View` on batches the mirror has
already turned into CloudTrail JSON (:func:`pipeline.mirror.json.cloudtrail_json`):

* **filter** (:meth:`ViewEncoder.mask`), columnar on the batch table. Every condition given must
  hold. ``accounts``/``regions`` compare with the record's Kafka key ``<accountId>|<region>``
  split at its first ``|`` (a null key or one without ``|`` matches no account or region
  filter); ``event_sources``/``event_names`` with the typed ``eventSource``/``eventName``;
  ``read_only`` with the typed boolean ``readOnly``, where a record without a boolean readOnly
  (absent, null, or the string ``"true"`` some tools write) counts as *not* read-only;
  ``errors``: a record is an error when it has a string ``errorCode`` (any string, also ``""``).
* **redaction** (:meth:`ViewEncoder.redact`), per selected record in Python, only when the view
  redacts something (otherwise the mirror's text is passed on as is). ``remove`` paths are
  dotted keys (``responseElements.credentials``); a path descends into JSON objects only (never
  into arrays, so ``resources.ARN`` removes nothing), a key holding a ``.`` cannot be named, and
  a path that is not there is fine. ``hash_source_ip`` replaces a *string* ``sourceIPAddress``
  by ``"hmac-sha256:" + HMAC-SHA256(key, ip).hexdigest()``; the same IP gives the same value in
  one subscription and unrelated values across subscriptions (different keys). Everything
  else is kept exactly (numbers too: big integers and NaN are parsed the standard library's way).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.plan import json_text, parse_json_text
from pipeline.siem.model import View

HASH_PREFIX = "hmac-sha256:"
# orjson turns integers past 64 bits into floats: such texts are parsed by the standard library.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


class ViewEncoder:
    """One view's filter and redaction (see the module docstring). Stateless between batches;
    safe to share between batches, not between threads that call it at once."""

    def __init__(self, view: View) -> None:
        self.view = view
        f = view.filter
        self._filter_all = f.is_empty()
        self._redacts = not view.redact.is_empty()
        self._paths = [tuple(path.split(".")) for path in view.redact.remove]
        self._hash_key = (bytes.fromhex(view.hash_key_hex)
                          if view.redact.hash_source_ip and view.hash_key_hex else None)

    def mask(self, table: pa.Table) -> pa.BooleanArray:
        """One boolean per row (never null): does the view hold this record?"""
        f = self.view.filter
        keep: pa.Array | pa.ChunkedArray = pa.repeat(pa.scalar(True), table.num_rows)
        if f.accounts or f.regions:
            keep = pc.and_(keep, self._key_mask(table.column("_key")))
        if f.event_sources:
            keep = pc.and_(keep, _is_in(table.column("eventSource"), f.event_sources))
        if f.event_names:
            keep = pc.and_(keep, _is_in(table.column("eventName"), f.event_names))
        if f.read_only is not None:
            read_only = pc.fill_null(table.column("readOnly"), False)
            keep = pc.and_(keep, read_only if f.read_only else pc.invert(read_only))
        if f.errors is not None:
            error = pc.is_valid(table.column("errorCode"))
            keep = pc.and_(keep, error if f.errors else pc.invert(error))
        return _one_array(keep)

    def _key_mask(self, keys: pa.ChunkedArray) -> pa.Array:
        """The account/region conditions on the key column. Keys repeat (one per account and
        region), so each distinct key is decided once in Python and the result spread back."""
        encoded = pc.dictionary_encode(_one_array(keys))
        f = self.view.filter
        accounts = {a.encode() for a in f.accounts}
        regions = {r.encode() for r in f.regions}
        verdicts = []
        for key in encoded.dictionary.to_pylist():
            account, bar, region = key.partition(b"|")
            verdicts.append(bool(bar) and (not accounts or account in accounts)
                            and (not regions or region in regions))
        return pc.fill_null(pc.take(pa.array(verdicts, pa.bool_()), encoded.indices), False)

    def redact(self, text: bytes) -> bytes:
        """One CloudTrail JSON text with the view's redaction applied (the text itself when the
        view redacts nothing)."""
        if not self._redacts:
            return text
        record = _loads(text)
        if type(record) is not dict:
            return text
        for path in self._paths:
            _remove(record, path)
        ip = record.get("sourceIPAddress")
        if self._hash_key is not None and type(ip) is str:
            digest = hmac.new(self._hash_key, ip.encode("utf-8", "surrogatepass"),
                              hashlib.sha256).hexdigest()
            record["sourceIPAddress"] = HASH_PREFIX + digest
        return json_text(record).encode()  # json_text escapes lone surrogates

    def select(self, table: pa.Table, texts: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """``(row, view text)`` for every row the filter selects, in row order; ``texts[i]``
        is row ``i``'s CloudTrail JSON."""
        if self._filter_all:
            rows: Sequence[int] = range(table.num_rows)
        else:
            rows = pc.indices_nonzero(self.mask(table)).to_pylist()
        if not self._redacts:
            return [(row, texts[row]) for row in rows]
        return [(row, self.redact(texts[row])) for row in rows]


def _is_in(column: pa.ChunkedArray, values: list[str]) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_in(column, value_set=pa.array(values, pa.string())), False)


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def _loads(text: bytes) -> Any:
    """The JSON value of ``text`` exactly as the standard library parses it (orjson when that
    gives the same: no NaN/Infinity, lone surrogates or integers past 64 bits)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return parse_json_text(text.decode("utf-8", "surrogatepass"), "the record")


def _remove(record: dict[str, Any], path: tuple[str, ...]) -> None:
    """Delete the key at ``path`` (descending through objects only), if it is there."""
    node: Any = record
    for key in path[:-1]:
        node = node.get(key)
        if type(node) is not dict:
            return
    node.pop(path[-1], None)
