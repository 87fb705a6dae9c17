"""Reading CloudTrail files: every record comes out, good or bad with a reason and location."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from producers.files import find_files, parse_bytes, read_file

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
REC = {"eventVersion": "1.08", "eventName": "GetObject", "awsRegion": "us-east-1"}


def good(records):
    return [r.value for r in records if r.error is None]


def test_cloudtrail_delivery_file_gzip_records() -> None:
    data = gzip.compress(json.dumps({"Records": [REC, {**REC, "eventName": "PutObject"}]}).encode())
    out = list(parse_bytes(data, "x.json.gz"))
    assert [r.location for r in out] == ["x.json.gz#Records[0]", "x.json.gz#Records[1]"]
    assert good(out)[1]["eventName"] == "PutObject"


def test_single_object_array_and_json_lines() -> None:
    assert good(parse_bytes(json.dumps(REC).encode(), "one.json")) == [REC]
    assert len(good(parse_bytes(json.dumps([REC, REC]).encode(), "arr.json"))) == 2
    lines = (json.dumps(REC) + "\n\n" + json.dumps(REC) + "\n").encode()
    out = list(parse_bytes(lines, "events.log"))  # detected as JSON lines by content
    assert [r.location for r in out] == ["events.log:1", "events.log:3"]


def test_bad_lines_are_reported_one_by_one_and_good_ones_kept() -> None:
    data = b"\n".join([json.dumps(REC).encode(), b"{not json", b"[1, 2]", b"\xff\xfe{}",
                       json.dumps(REC).encode()])
    out = list(parse_bytes(data, "mixed.jsonl"))
    assert [r.error_type for r in out] == [None, "JSONDecodeError", "NotAnObject", "InvalidUTF8",
                                           None]
    assert out[1].raw == b"{not json" and out[1].location == "mixed.jsonl:2"


def test_gzip_problems() -> None:
    [not_gz] = parse_bytes(b'{"Records": []}', "log.json.gz")
    assert not_gz.error_type == "NotGzipError"
    truncated = gzip.compress(json.dumps({"Records": [REC] * 50}).encode())[:-20]
    [cut] = parse_bytes(truncated, "log.json.gz")
    assert cut.error_type == "TruncatedGzipError" and cut.raw == truncated


def test_record_over_size_limit() -> None:
    big = {**REC, "requestParameters": {"blob": "x" * 2000}}
    out = list(parse_bytes(json.dumps({"Records": [REC, big]}).encode(), "f.json",
                           max_record_bytes=1000))
    assert [r.error_type for r in out] == [None, "RecordTooLarge"]
    assert "over the limit of 1000" in (out[1].error or "")


def test_invalid_utf8_document() -> None:
    [bad] = parse_bytes(b'{"eventName": "\xff"}', "f.json")
    assert bad.error_type == "InvalidUTF8"


def test_every_corpus_invalid_example_is_reported_not_dropped() -> None:
    files = sorted(CORPUS.glob("*/invalid/*"))
    assert len(files) == 17
    for path in files:
        out = list(read_file(path))
        assert len(out) == 1 and out[0].error_type == "JSONDecodeError", path
        assert out[0].raw == path.read_bytes()


@pytest.mark.parametrize("source", sorted(p.name for p in CORPUS.iterdir() if p.is_dir()))
def test_every_corpus_record_reads(source: str) -> None:
    path = CORPUS / source / "records.jsonl"
    out = list(read_file(path))
    assert all(r.error is None for r in out)
    assert len(out) == sum(1 for line in path.read_text().splitlines() if line.strip())


def test_find_files_skips_hidden_and_digests(tmp_path: Path) -> None:
    (tmp_path / "AWSLogs/1/CloudTrail/us-east-1").mkdir(parents=True)
    (tmp_path / "AWSLogs/1/CloudTrail-Digest").mkdir(parents=True)
    (tmp_path / "AWSLogs/1/CloudTrail/us-east-1/a.json.gz").write_bytes(b"")
    (tmp_path / "AWSLogs/1/CloudTrail/us-east-1/notes.txt").write_bytes(b"")
    (tmp_path / "AWSLogs/1/CloudTrail-Digest/d.json.gz").write_bytes(b"")
    (tmp_path / ".hidden").write_bytes(b"")
    names = [p.name for p in find_files(tmp_path)]
    assert names == ["a.json.gz", "notes.txt"]


def test_records_member_of_the_wrong_type() -> None:
    [bad] = parse_bytes(b'{"Records": {"eventName": "x"}}', "f.json")
    assert bad.error_type == "WrongType" and "must be a JSON array" in (bad.error or "")
