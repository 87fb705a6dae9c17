"""bench/results.json: one entry per scenario, merged in place and written atomically.

Pure logic (no Kafka): ``merge_results`` builds the new document, ``write_json_atomic`` replaces
the file via a temp file + fsync + rename, so a crash never leaves a half-written file and a
scenario's run never touches another scenario's entry.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ResultValue = int | float | str | None
ScenarioResult = dict[str, ResultValue]


class ResultsFileError(RuntimeError):
    """bench/results.json exists but is not a JSON object; it is left as it is."""


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"cores": os.cpu_count(), "python": platform.python_version()}


def run_metadata(kafka_version: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The keys every scenario entry carries besides its own numbers."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "measured_at": when.isoformat(timespec="seconds"),
        "kafka_version": kafka_version,
        "machine": machine_info(),
    }


def merge_results(doc: Mapping[str, Any], scenario: str, result: Mapping[str, ResultValue],
                  meta: Mapping[str, Any]) -> dict[str, Any]:
    """A new document: ``doc`` with ``scenario``'s entry replaced by ``result`` + ``meta``.

    Other scenarios' entries are carried over untouched; ``doc`` itself is not modified. The
    scenario's previous entry is replaced as a whole, so no stale key survives a new run.
    """
    merged = dict(doc)
    merged[scenario] = {**result, **meta}
    return merged


def load_results(path: Path) -> dict[str, Any]:
    """The current document; ``{}`` when the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
    if not isinstance(doc, dict):
        raise ResultsFileError(f"{path} does not hold a JSON object; fix or remove it")
    return doc


def write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    """Serialise ``doc`` fully, then replace ``path`` in one rename. On any error the old file
    is untouched and the temp file is removed."""
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def record_result(path: Path, scenario: str, result: Mapping[str, ResultValue],
                  meta: Mapping[str, Any]) -> dict[str, Any]:
    """Merge one scenario's result into the file at ``path``; return the written document."""
    doc = merge_results(load_results(path), scenario, result, meta)
    write_json_atomic(path, doc)
    return doc
