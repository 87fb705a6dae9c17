"""Mapping and encoding in one pass: CloudTrail record -> single-object Avro message.

Contract: ``encode_record(record, t, source, producer, location)`` equals
``wire.encode(to_avro(record, ingest=IngestMeta(t, source, producer, location)))`` byte for
byte, and it raises what that expression raises (InvalidRecord, InvalidDatum). It exists
because the two-step path builds a datum dict and then reads every schema field of it back;
here one function per record type, generated from the schema and the mapping plan
(:mod:`pipeline.events.plan`), reads each field from the CloudTrail record, checks its kind,
writes its Avro bytes and collects the residual (``unmodelled``) on the way. The residual's key
order is the record's, as :func:`~pipeline.events.plan.split` builds it, so ``unmodelled``
text is the same too. Anything unexpected (an exception of any kind) re-runs the record through
the two-step path, which then returns the same bytes or raises the documented error.

Only the writer schema whose meta fields are exactly ``eventTimeMs, eventTimeStatus,
unmodelled, ingest`` (ApiCallEvent v1) is fused; :func:`fused_encoder` returns None for others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.events.avro_writer import _SMALL, _SMALL_PRESENT, _zigzag_varint, compile_type
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.events.plan import FieldPlan, Kind, _convert_whole, compile_plan, json_text
from pipeline.events.schemas import SchemaEntry, default_registry
from pipeline.events.wire import MAGIC, encode

Encoder = Callable[[dict[str, Any], int, str, str, str | None], bytes]
"""``(record, ingest_time_ms, source, producer_id, location) -> message``: the IngestMeta
fields as arguments (a dataclass per record costs more than the rest of the ingest part)."""
META = ["eventTimeMs", "eventTimeStatus", "unmodelled", "ingest"]
_MISSING = object()


_NULL = "out += b'\\x00'"
_STRING = ["b = {var}.encode()", "n = len(b)",
           "out += S2[n] if n < 4096 else b'\\x02' + zz(n)", "out += b"]
"""Appends the non-null union branch of the (already checked) string ``{var}``."""
_TO_REST = ["if rest is None:", "    rest = {{}}", "rest[{name!r}] = v"]
_TEMPLATES = {
    Kind.STR: ["if v is M:", f"    {_NULL}",
               "elif type(v) is str and (v.isascii() or surrogate(v) is None):",
               *(f"    {x}" for x in _STRING), "else:", f"    {_NULL}",
               *(f"    {x}" for x in _TO_REST)],
    Kind.JSON: ["if v is M:", f"    {_NULL}", "else:", "    t = json_text(v)",
                *(f"    {x}".replace("{var}", "t") for x in _STRING)],
    Kind.BOOL: ["if v is True:", "    out += b'\\x02\\x01'", "elif v is False:",
                "    out += b'\\x02\\x00'", "else:", f"    {_NULL}", "    if v is not M:",
                *(f"        {x}" for x in _TO_REST)],
    Kind.OBJECT: ["if type(v) is dict:", "    out += b'\\x02'", "    r = {sub}(v, out)",
                  "    if r:", "        if rest is None:", "            rest = {{}}",
                  "        rest[{name!r}] = r", "else:", f"    {_NULL}", "    if v is not M:",
                  *(f"        {x}" for x in _TO_REST)],
    # OBJECTS, STRMAP: all or nothing, as split does
    None: ["if v is M:", f"    {_NULL}", "else:", "    w = convert({plan}, v)", "    if w is None:",
           f"        {_NULL}", *(f"        {x}" for x in _TO_REST), "    else:",
           "        out += b'\\x02'", "        {writer}(w, out)"],
}
"""Source of one field's block (4-space indented in the function) by kind; ``v`` is the
record's value or ``M`` when the key is absent."""


class _Generator:
    """Builds the source of one function per record type of the plan."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"M": _MISSING, "S2": _SMALL_PRESENT, "S": _SMALL,
                                    "zz": _zigzag_varint, "json_text": json_text,
                                    "convert": _convert_whole,
                                    "surrogate": re.compile("[\ud800-\udfff]").search}
        self.lines: list[str] = []
        self.count = 0

    def record(self, schema: Mapping[str, Any], namespace: str | None) -> str:
        """Generate the function for a record schema; returns its name. The function takes
        (object, out), appends the record's Avro body and returns the residual or None."""
        plan = compile_plan(schema)
        fname, self.count = f"obj{self.count}", self.count + 1
        keys = f"K_{fname}"
        self.env[keys] = frozenset(plan.by_name)
        body = [f"def {fname}(o, out):", "    get = o.get", "    rest = None",
                f"    if not {keys}.issuperset(o):",
                f"        rest = {{k: v for k, v in o.items() if k not in {keys}}}"]
        ns = schema.get("namespace", namespace)
        by_schema = {f["name"]: f for f in schema["fields"]}
        for i, f in enumerate(plan.fields):
            body.append(f"    v = get({f.name!r}, M)")
            body += self._field(fname, i, f, by_schema[f.name], ns)
        body += ["    if rest is not None and len(rest) > 1:",
                 "        rest = {k: rest[k] for k in o if k in rest}", "    return rest"]
        self.lines += body
        return fname

    def _field(self, fname: str, i: int, f: FieldPlan, field: Mapping[str, Any],
               ns: str | None) -> list[str]:
        sub = plan = writer = ""
        if f.kind is Kind.OBJECT:
            sub = self.record(field["type"][1], ns)
        elif f.kind not in _TEMPLATES:
            plan, writer = f"F_{fname}_{i}", f"W_{fname}_{i}"
            self.env[plan], self.env[writer] = f, compile_type(field["type"][1], ns)
        template = _TEMPLATES.get(f.kind, _TEMPLATES[None])
        return ["    " + line.format(name=f.name, sub=sub, plan=plan, writer=writer, var="v")
                for line in template]


def fused_encoder(entry: SchemaEntry | None = None) -> Encoder | None:
    """The one-pass encoder for ``entry`` (default: the current ApiCallEvent), or None when its
    meta fields are not the v1 set (then use ``encode(to_avro(...))``)."""
    entry = entry or default_registry().get()
    fields = entry.raw["fields"]
    if [f["name"] for f in fields if f.get("trailpipe.kind") == "meta"] != META or \
            [f["name"] for f in fields[-len(META):]] != META:
        return None
    gen = _Generator()
    top = gen.record(entry.raw, entry.raw.get("namespace"))
    exec("\n".join(gen.lines), gen.env)
    status = {s: _SMALL[i] for i, s in enumerate(fields[-3]["type"]["symbols"])}
    write_ingest = compile_type(fields[-1]["type"], entry.raw.get("namespace"))
    return _entry(gen.env[top], status, write_ingest, MAGIC + entry.fingerprint)


def _entry(top: Any, status: dict[str, bytes], write_ingest: Any, prefix: bytes) -> Encoder:
    def encode_record(record: dict[str, Any], ingest_time_ms: int, source: str,
                      producer_id: str, location: str | None) -> bytes:
        """See the module contract."""
        out = bytearray(prefix)
        try:
            if type(ingest_time_ms) is not int:
                raise TypeError("ingest_time_ms")
            rest = top(record, out)
            ms, state = parse_event_time(record)
            if ms is None:
                out += b"\x00"
            else:
                out += b"\x02"
                out += _SMALL[ms] if 0 <= ms < 4096 else _zigzag_varint(ms)
            out += status[state]
            if rest:
                b = json_text(rest).encode()
                n = len(b)
                out += _SMALL_PRESENT[n] if n < 4096 else b"\x02" + _zigzag_varint(n)
                out += b
            else:
                out += b"\x00"
            write_ingest({"ingestTimeMs": ingest_time_ms, "source": source,
                          "producerId": producer_id, "location": location}, out)
        except Exception:
            ingest = IngestMeta(ingest_time_ms, source, producer_id, location)
            return encode(to_avro(record, ingest=ingest))
        return bytes(out)

    return encode_record


def _two_step(record: dict[str, Any], ingest_time_ms: int, source: str, producer_id: str,
              location: str | None) -> bytes:
    ingest = IngestMeta(ingest_time_ms, source, producer_id, location)
    return encode(to_avro(record, ingest=ingest))


encode_event: Encoder = fused_encoder() or _two_step
"""The current schema's :data:`Encoder`: fused when the schema allows it, else two-step."""
