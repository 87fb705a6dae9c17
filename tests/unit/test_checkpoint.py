"""The S3 checkpoint: durable, atomic per group, keyed by (bucket, key) and checked against ETag
and size, one writer at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from producers.checkpoint import Checkpoint, CheckpointLocked, ObjectRef

REF = ObjectRef("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/a.json.gz",
                "9b2cf535f27731c974343645a3985328", 1234)


def test_marked_objects_are_done_only_with_same_etag_and_size(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "state" / "s3.db") as cp:
        assert not cp.is_done(REF)
        cp.mark_done([(REF, 25)])
        assert cp.is_done(REF)
        assert not cp.is_done(ObjectRef(REF.bucket, REF.key, "other-etag", REF.size))
        assert not cp.is_done(ObjectRef(REF.bucket, REF.key, REF.etag, REF.size + 1))
        assert not cp.is_done(ObjectRef("another-bucket", REF.key, REF.etag, REF.size))
        assert cp.count() == cp.count(REF.bucket) == 1 and cp.count("another-bucket") == 0


def test_a_changed_etag_replaces_the_entry(tmp_path: Path) -> None:
    replaced = ObjectRef(REF.bucket, REF.key, "new-etag", 99)
    with Checkpoint(tmp_path / "s3.db") as cp:
        cp.mark_done([(REF, 25)])
        cp.mark_done([(replaced, 3)])
        assert cp.is_done(replaced) and not cp.is_done(REF)
        assert cp.keys(REF.bucket) == {REF.key: ("new-etag", 99)}


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s3.db"
    with Checkpoint(path) as cp:
        cp.mark_done([(REF, 1)])
    with Checkpoint(path) as cp:
        assert cp.is_done(REF)


def test_a_group_commits_all_or_nothing(tmp_path: Path) -> None:
    second = ObjectRef(REF.bucket, "b.json.gz", "e", 1)
    with Checkpoint(tmp_path / "s3.db") as cp:
        with pytest.raises(sqlite3.Error):  # the 2nd row cannot be bound: the 1st rolls back
            cp.mark_done([(REF, 1), (ObjectRef(REF.bucket, "c", "e", object()), 1)])  # type: ignore[arg-type]
        assert cp.count() == 0
        cp.mark_done([(REF, 1), (second, 2)])  # still usable afterwards
        assert cp.count() == 2
        cp.mark_done([])
        assert cp.count() == 2


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "s3.db"
    first = Checkpoint(path)
    with pytest.raises(CheckpointLocked, match="in use"):
        Checkpoint(path)
    first.close()
    first.close()  # idempotent
    with Checkpoint(path) as again:
        assert again.count() == 0


def test_usable_from_another_thread(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "s3.db") as cp:
        worker = threading.Thread(target=cp.mark_done, args=([(REF, 1)],))
        worker.start()
        worker.join()
        assert cp.is_done(REF)


def test_committed_groups_survive_sigkill_and_the_lock_is_released(tmp_path: Path) -> None:
    """A process killed right after mark_done returned: its group is there, nothing else, and
    the next process can take the checkpoint over."""
    path = tmp_path / "s3.db"
    script = (
        "import os, signal, sys\n"
        "from producers.checkpoint import Checkpoint, ObjectRef\n"
        "cp = Checkpoint(sys.argv[1])\n"
        "cp.mark_done([(ObjectRef('b', f'k{i}', 'e', i), i) for i in range(50)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -9
    with Checkpoint(path) as cp:
        assert cp.count("b") == 50
        assert cp.is_done(ObjectRef("b", "k7", "e", 7))
