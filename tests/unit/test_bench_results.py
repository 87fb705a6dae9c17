"""bench/results.json merging: one scenario's run never touches another's entry; writes are
atomic (a failed write leaves the old file byte for byte). No Kafka."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

# bench/ is a top-level package of the repo, not installed into the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.results import (
    ResultsFileError,
    load_results,
    merge_results,
    record_result,
    run_metadata,
    write_json_atomic,
)

META = {"measured_at": "2025-01-01T00:00:00+00:00", "kafka_version": "4.4.0",
        "machine": {"cores": 2, "python": "3.11.7"}}
OTHER = {"other": {"x_per_s": 1.5, "nested": {"keep": [1, 2]}, "measured_at": "old"}}


def test_merge_keeps_other_scenarios_and_does_not_mutate_input() -> None:
    doc = json.loads(json.dumps(OTHER))
    merged = merge_results(doc, "runner", {"runner_records_per_s": 10.0}, META)
    assert merged["other"] == OTHER["other"]
    assert merged["runner"] == {"runner_records_per_s": 10.0, **META}
    assert doc == OTHER


def test_merge_replaces_the_scenario_entry_as_a_whole() -> None:
    doc = {**OTHER, "runner": {"stale_key": 1, "runner_records_per_s": 1.0}}
    merged = merge_results(doc, "runner", {"runner_records_per_s": 2.0}, META)
    assert "stale_key" not in merged["runner"]
    assert merged["runner"]["runner_records_per_s"] == 2.0
    assert merged["other"] == OTHER["other"]


def test_record_result_merges_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(OTHER))
    record_result(path, "runner", {"records": 3, "java_consumer_perf_error": None}, META)
    on_disk = json.loads(path.read_text())
    assert on_disk["other"] == OTHER["other"]
    assert on_disk["runner"]["records"] == 3
    assert on_disk["runner"]["java_consumer_perf_error"] is None
    assert on_disk["runner"]["kafka_version"] == "4.4.0"


def test_record_result_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    record_result(path, "runner", {"records": 1}, META)
    assert set(json.loads(path.read_text())) == {"runner"}


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(OTHER))
    before = path.read_bytes()
    with pytest.raises(ValueError):  # NaN is not JSON: serialisation fails
        record_result(path, "runner", {"rate": float("nan")}, META)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_failed_rename_removes_the_temp_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    path.write_text("{}")

    def boom(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("bench.results.os.replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        write_json_atomic(path, {"runner": {"records": 1}})
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_a_broken_file_is_reported_not_overwritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ResultsFileError):
        record_result(path, "runner", {"records": 1}, META)
    assert path.read_text() == content


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_results(tmp_path / "absent.json") == {}


def test_run_metadata_shape() -> None:
    meta = run_metadata("4.4.0", now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert meta["measured_at"] == "2025-01-02T03:04:05+00:00"
    assert meta["kafka_version"] == "4.4.0"
    assert set(meta["machine"]) == {"cores", "python"}
    assert meta["machine"]["cores"] >= 1
