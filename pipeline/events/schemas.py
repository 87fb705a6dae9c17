"""The Avro schemas, loaded once and addressed by name+version or fingerprint.

The ``.avsc`` files live in ``schemas/`` (the repository's one copy), a package of its own whose
package data they are, so they ship in the wheel: they are read through
:mod:`importlib.resources`, never from a source-tree path, so an installed ``trailpipe`` finds
them wherever (and however) the package is installed.

Every ``<Name>.v<major>[_<minor>].avsc`` file is one complete, self-contained schema. Its
fingerprint is the Avro spec's CRC-64-AVRO of the Parsing Canonical Form, kept as the 8 bytes
that go on the wire (little-endian), so ``doc`` strings and our ``trailpipe.*`` attributes
never change a fingerprint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_DIR: Traversable = files("schemas")
"""The packaged ``.avsc`` files (package data of the ``schemas`` package, in the wheel too)."""

API_CALL_EVENT = "io.trailpipe.audit.ApiCallEvent"
CURRENT_VERSION = "1"
"""The version producers write today. v1.1 is an additive evolution that readers accept."""

_FILE_NAME = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*\.v(?P<major>\d+)(?:_(?P<minor>\d+))?\.avsc$", re.ASCII
)


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One schema file: its full name, version ("1", "1.1"), wire fingerprint and parsed form."""

    name: str
    version: str
    path: Traversable
    fingerprint: bytes
    canonical: str
    raw: dict[str, Any]
    parsed: Any

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as 16 hex digits in wire (little-endian) byte order."""
        return self.fingerprint.hex()


def fingerprint_of(canonical: str) -> bytes:
    """CRC-64-AVRO of a Parsing Canonical Form, as the 8 little-endian bytes of the wire.
    (fastavro returns the hex of exactly those bytes.)"""
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def load_entry(path: Traversable) -> SchemaEntry:
    """Parse one ``.avsc``; raise ValueError if the file name or the schema is malformed."""
    m = _FILE_NAME.match(path.name)
    if m is None:
        raise ValueError(f"{path}: schema files are named <Name>.v<major>[_<minor>].avsc")
    raw = json.loads(path.read_text(encoding="utf-8"))
    # A fresh named-types dict per file: v1 and v1.1 define the same names differently.
    parsed = parse_schema(raw, {})
    canonical = to_parsing_canonical_form(raw)
    fp = fingerprint_of(canonical)
    version = m["major"] + (f".{m['minor']}" if m["minor"] else "")
    name = f"{raw['namespace']}.{raw['name']}" if raw.get("namespace") else str(raw["name"])
    return SchemaEntry(name, version, path, fp, canonical, raw, parsed)


class SchemaRegistry:
    """All schemas of a directory. Lookups raise KeyError; see :mod:`pipeline.events.wire` for
    the typed wire errors built on top."""

    def __init__(self, entries: list[SchemaEntry]) -> None:
        self._by_fp: dict[bytes, SchemaEntry] = {}
        self._by_version: dict[tuple[str, str], SchemaEntry] = {}
        for e in entries:
            other = self._by_fp.get(e.fingerprint)
            if other is not None:
                raise ValueError(f"{e.path} and {other.path} have the same canonical form")
            self._by_fp[e.fingerprint] = e
            self._by_version[(e.name, e.version)] = e

    @classmethod
    def from_dir(cls, directory: Traversable = SCHEMA_DIR) -> SchemaRegistry:
        """Load every ``*.avsc`` in ``directory`` (a Path, or any importlib.resources
        Traversable such as a zip member), sorted by name so errors are reproducible."""
        found = [p for p in directory.iterdir() if p.name.endswith(".avsc") and p.is_file()]
        return cls([load_entry(p) for p in sorted(found, key=lambda p: p.name)])

    def by_fingerprint(self, fp: bytes) -> SchemaEntry:
        """The schema whose 8-byte wire fingerprint is ``fp``."""
        return self._by_fp[fp]

    def get(self, name: str = API_CALL_EVENT, version: str = CURRENT_VERSION) -> SchemaEntry:
        """The schema ``name`` at ``version`` ("1", "1.1"); KeyError names what is missing."""
        try:
            return self._by_version[(name, version)]
        except KeyError:
            known = ", ".join(f"{n} v{v}" for n, v in sorted(self._by_version)) or "none"
            raise KeyError(f"no schema {name} v{version} (loaded: {known})") from None

    def newest(self, name: str = API_CALL_EVENT) -> SchemaEntry:
        """The highest version of ``name`` (the reader that loses no field any writer has,
        as long as versions evolve additively). KeyError when there is none."""
        versions = [e for e in self._by_fp.values() if e.name == name]
        if not versions:
            raise KeyError(f"no schema {name}")
        return max(versions, key=lambda e: tuple(int(p) for p in e.version.split(".")))

    def entries(self) -> list[SchemaEntry]:
        """Every loaded schema, in file-name order."""
        return sorted(self._by_fp.values(), key=lambda e: e.path.name)


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    """The registry of the packaged schemas (:data:`SCHEMA_DIR`), loaded on first use and
    then shared."""
    return SchemaRegistry.from_dir(SCHEMA_DIR)
