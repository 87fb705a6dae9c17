"""`trailpipe events encode|decode` over the whole corpus and over bad input (no broker)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.wire import encode

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
CLI = [sys.executable, "-m", "pipeline.cli.app", "events"]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=120)


def test_corpus_encode_then_decode_is_lossless(tmp_path: Path) -> None:
    files = sorted(CORPUS.glob("*/records.jsonl"))
    encoded = run("encode", *map(str, files))
    assert encoded.returncode == 0, encoded.stderr.decode()
    assert encoded.stdout.startswith(b"Obj\x01")
    container = tmp_path / "corpus.avro"
    container.write_bytes(encoded.stdout)
    decoded = run("decode", str(container))
    assert decoded.returncode == 0, decoded.stderr.decode()
    got = [json.loads(line) for line in decoded.stdout.decode().splitlines()]
    want = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    assert len(got) == len(want) == 1073
    assert got == want  # parsed-JSON equality, order kept


def test_stdin_gzip_records_and_single_object_messages(tmp_path: Path) -> None:
    record = {"eventName": "StopLogging", "eventTime": "2024-05-01T10:00:00Z",
              "readOnly": "false", "big": 12345678901234567890}
    doc = gzip.compress(json.dumps({"Records": [record]}).encode())
    encoded = run("encode", "-", stdin=doc)
    assert encoded.returncode == 0
    message = tmp_path / "msg.bin"
    message.write_bytes(encode(to_avro(record, ingest=IngestMeta(0, "test", "t"))))
    decoded = run("decode", str(message))
    assert [json.loads(x) for x in decoded.stdout.decode().splitlines()] == [record]


def test_bad_records_are_reported_and_good_ones_still_written(tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b'{"eventName": "A"}\n[1]\n{"eventName": "B"}\n{broken\n')
    encoded = run("encode", str(src))
    assert encoded.returncode == 1
    errors = encoded.stderr.decode().splitlines()
    assert [e.split(": ")[0] for e in errors] == [f"{src}:2", f"{src}:4"]
    out = tmp_path / "good.avro"
    out.write_bytes(encoded.stdout)
    names = [json.loads(x)["eventName"] for x in run("decode", str(out)).stdout.splitlines()]
    assert names == ["A", "B"]
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"hello")
    bad = run("decode", str(garbage), str(out))
    assert bad.returncode == 1 and str(garbage) in bad.stderr.decode()
    assert len(bad.stdout.splitlines()) == 2  # the good file is still decoded


def test_encode_pipe_decode_reproduces_a_corpus_file() -> None:
    path = CORPUS / "stratus-red-team" / "records.jsonl"
    shell = f"{sys.executable} -m pipeline.cli.app events encode {path} | " \
            f"{sys.executable} -m pipeline.cli.app events decode"
    result = subprocess.run(shell, shell=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    want = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == want
