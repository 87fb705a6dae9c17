"""Reading CloudTrail records out of files as AWS delivers them, and as people hand them over.

Accepted: gzip or plain; a ``{"Records": [...]}`` document, a single record object, a JSON array
of records, or JSON lines. Nothing is dropped silently: every record that cannot be used comes
out as a :class:`RawRecord` with ``error`` set and its raw bytes, so the caller dead-letters it
with its location (``path:line`` or ``path#Records[i]``).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
_MASK_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else b for b in range(256))
_LONG_RUN = b"0" * 19
_RUN_END = re.compile(rb"0*")
_NUMBER_END = frozenset(b",}] \t\r\n")
_NUMBER_START = frozenset(b":[, \t\r\n")


def _may_hold_big_int(data: bytes) -> bool:
    """True when ``data`` may hold an integer of 19 or more digits, which orjson would read as
    a float (lossy): a digit run that long (maybe after ``-``) that starts where a JSON value
    can (after ``:``, ``[``, ``,``, whitespace) and ends where one can (before ``,``, ``}``,
    ``]``, whitespace): not part of a float, a word or the end of a string. Digit runs are
    found on a copy with every digit masked as ``0`` (C-speed ``translate`` and ``find``)."""
    masked = data.translate(_MASK_DIGITS)
    pos = masked.find(_LONG_RUN)
    while pos >= 0:
        run = _RUN_END.match(masked, pos)  # always matches (at least the 19 zeros)
        end = run.end() if run else pos + len(_LONG_RUN)
        start = pos - 1 if pos and masked[pos - 1] == 0x2D else pos  # a minus sign
        before = masked[start - 1] if start else 0x20
        if (end == len(masked) or masked[end] in _NUMBER_END) and before in _NUMBER_START:
            return True
        pos = masked.find(_LONG_RUN, end)
    return False


def parse_json(data: bytes, text: str | None = None) -> tuple[Any, bool]:
    """``(json.loads(text), by_orjson)`` where ``text`` is ``data`` decoded (decoded here when
    not given): value for value (big integers, key order and duplicate keys alike), raising
    what that raises. orjson parses when it is sure to agree (``by_orjson``): it rejects what
    the standard library would read differently (NaN, lone surrogates, overflowing floats), and
    text that may hold an integer beyond 64 bits goes to the standard library."""
    if not _may_hold_big_int(data):
        try:
            return orjson.loads(data), True
        except orjson.JSONDecodeError:
            pass  # the standard library decides, with its own messages
    return json.loads(data.decode("utf-8") if text is None else text), False


def loads(data: bytes) -> Any:
    """``json.loads(data.decode("utf-8"))``, faster (see :func:`parse_json`)."""
    return parse_json(data)[0]


def dumps(value: Any, by_orjson: bool) -> bytes:
    """UTF-8 JSON text of a value :func:`parse_json` returned, which :func:`loads` turns back
    into an equal value: orjson's compact text when orjson parsed it (it then holds nothing
    orjson cannot write exactly), the standard library's otherwise (ASCII-escaped when the
    value holds a lone surrogate, which UTF-8 cannot carry)."""
    if by_orjson:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes
            pass
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from a \ud800 escape): escape it again
        return json.dumps(value).encode("ascii")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read. Exactly one of ``value`` (parsed JSON object) or ``error`` is set."""

    location: str
    raw: bytes
    value: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None


def find_files(root: Path) -> list[Path]:
    """Every file under ``root`` (or ``root`` itself), sorted for a stable order; hidden files
    and CloudTrail digest files (``CloudTrail-Digest/``, not events) are left out. Files of any
    other name are read too, so nothing handed over is skipped silently."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and "CloudTrail-Digest" not in p.parts)


def read_file(path: Path, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """Yield every record of one file, good or bad. Never raises for bad content."""
    data = path.read_bytes()
    yield from parse_bytes(data, str(path), max_record_bytes)


def parse_bytes(data: bytes, name: str,
                max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """Yield the records of one document (see module docstring)."""
    try:
        data = _gunzip(data, name)
    except ValueError as exc:  # not gzip, truncated gzip
        yield RawRecord(name, data, error=str(exc), error_type=type(exc).__name__)
        return
    if _looks_like_json_lines(data, name):
        yield from _json_lines(data, name, max_record_bytes)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield RawRecord(name, data, error=f"invalid UTF-8 at byte {exc.start}",
                        error_type="InvalidUTF8")
        return
    yield from _document(text, data, name, max_record_bytes)


class NotGzipError(ValueError):
    """A ``.gz`` file that is not gzip."""


class TruncatedGzipError(ValueError):
    """A gzip stream that ends early or is corrupt."""


def _gunzip(data: bytes, name: str) -> bytes:
    if not data.startswith(GZIP_MAGIC):
        if name.endswith(".gz"):
            raise NotGzipError(f"{name}: not gzip (no gzip magic bytes)")
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise TruncatedGzipError(f"{name}: truncated or corrupt gzip: {exc}") from exc


def _looks_like_json_lines(data: bytes, name: str) -> bool:
    """JSON lines by suffix, or when the first non-empty line is a complete JSON object
    and more lines follow."""
    if name.removesuffix(".gz").endswith(JSON_LINES_SUFFIXES):
        return True
    lines = [ln for ln in data.splitlines() if ln.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0].decode("utf-8", "replace")), dict)
    except ValueError:
        return False


def _json_lines(data: bytes, name: str, max_record_bytes: int) -> Iterator[RawRecord]:
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield _checked(line, f"{name}:{number}", max_record_bytes,
                           lambda line=line: loads(line))


def _document(text: str, data: bytes, name: str, max_record_bytes: int) -> Iterator[RawRecord]:
    try:
        doc, by_orjson = parse_json(data, text)
    except json.JSONDecodeError as exc:
        yield RawRecord(name, data, error=f"invalid JSON at line {exc.lineno} column "
                        f"{exc.colno}: {exc.msg}", error_type="JSONDecodeError")
        return
    if isinstance(doc, dict) and "Records" in doc and not isinstance(doc["Records"], list):
        yield RawRecord(name, data, error="\"Records\" must be a JSON array, got "
                        f"{type(doc['Records']).__name__}", error_type="WrongType")
        return
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        items, where = doc["Records"], "#Records"
    elif isinstance(doc, list):
        items, where = doc, "#"
    else:
        items, where = [doc], ""
    for index, item in enumerate(items):
        location = f"{name}{where}[{index}]" if where else name
        raw = dumps(item, by_orjson)
        yield _checked(raw, location, max_record_bytes, lambda item=item: item)


def _checked(raw: bytes, location: str, max_record_bytes: int, parse: Any) -> RawRecord:
    if len(raw) > max_record_bytes:
        return RawRecord(location, raw, error=f"record is {len(raw)} bytes, over the limit of "
                         f"{max_record_bytes}", error_type="RecordTooLarge")
    try:
        value = parse()
    except UnicodeDecodeError as exc:
        return RawRecord(location, raw, error=f"invalid UTF-8 at byte {exc.start}",
                         error_type="InvalidUTF8")
    except json.JSONDecodeError as exc:
        return RawRecord(location, raw, error=f"invalid JSON: {exc}",
                         error_type="JSONDecodeError")
    if not isinstance(value, dict):
        return RawRecord(location, raw, error=f"record is a JSON {type(value).__name__}, "
                         "not an object", error_type="NotAnObject")
    return RawRecord(location, raw, value=value)
