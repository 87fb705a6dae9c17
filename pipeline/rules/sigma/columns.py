"""The columns of one decoded events table as vectorized Sigma rules read them (see
:mod:`pipeline.rules.sigma.vector`): struct paths, per-distinct-value text tests, and the
per-table *hazards* (rows a column operation cannot decide exactly), computed once per table
and shared by every rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

Mask: TypeAlias = "pa.ChunkedArray | pa.Array"
Node = Callable[["Columns"], Mask]
"""A rule part evaluated over a table: bool per row, null read as False."""
TextTest = Callable[[pa.Array], Mask]


class Columns:
    """The columns of one decoded events table as rules read them; share one per table."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._encoded: dict[str, list[tuple[pa.Array, pa.Array, pa.Array]]] = {}
        self._shared: dict[tuple[str, str], Mask] = {}

    def raw(self, path: str) -> Mask:
        """The column at a dotted struct path; all null when a column or member is missing."""
        head, *rest = path.split(".")
        if head not in self.table.column_names:
            return pa.nulls(self.table.num_rows, pa.string())
        column: Any = self.table.column(head)
        for name in rest:
            if not pa.types.is_struct(column.type) or column.type.get_field_index(name) < 0:
                return pa.nulls(self.table.num_rows, pa.string())
            column = pc.struct_field(column, name)  # null where a parent is null
        return column

    def per_value(self, path: str, lowered: bool, test: TextTest) -> Mask:
        """``test`` on the column's text (``ascii_lower``-ed if ``lowered``), run on the
        distinct values and spread back to the rows (null rows stay null)."""
        if path not in self._encoded:
            text = pc.dictionary_encode(pc.cast(self.raw(path), pa.string()))
            chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
            self._encoded[path] = [(c.dictionary, pc.ascii_lower(c.dictionary), c.indices)
                                   for c in chunks]
        return pa.chunked_array([pc.take(test(lower if lowered else values), indices)
                                 for values, lower, indices in self._encoded[path]], pa.bool_())

    def shared(self, what: str, key: str, make: Callable[[], Mask]) -> Mask:
        """``make()`` (nulls as False) once per table: hazards several rules share."""
        if (what, key) not in self._shared:
            self._shared[(what, key)] = pc.fill_null(make(), False)
        return self._shared[(what, key)]


def non_ascii(path: str) -> Node:
    return lambda c: c.shared("non-ascii", path, lambda: c.per_value(
        path, False, lambda v: pc.invert(pc.string_is_ascii(v))))


def ends_newline(path: str) -> Node:
    return lambda c: c.shared("newline", path, lambda: c.per_value(
        path, False, lambda v: pc.ends_with(v, "\n")))


def in_unmodelled(pattern: str) -> Node:
    return lambda c: c.shared("unmodelled", pattern, lambda: pc.match_substring_regex(
        c.raw("unmodelled"), pattern))


def nothing(columns: Columns) -> Mask:
    """All null: the column of a path no record has outside ``unmodelled``."""
    return pa.nulls(columns.table.num_rows, pa.bool_())
