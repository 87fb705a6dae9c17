"""Generator → Kafka → archiver → lake, then `trailpipe lake query` against the producer's
own counts, and an Athena-style CloudTrail query run unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from kit import read_all

from pipeline.config import load_config
from pipeline.daemon import Context, build_registered
from pipeline.events.mapping import from_avro
from pipeline.events.wire import decode

pytestmark = pytest.mark.integration
FAILED_LOGINS_BY_USER = """
SELECT useridentity.username AS username, count(*) AS failures
FROM cloudtrail
WHERE eventsource = 'signin.amazonaws.com'
  AND eventname = 'ConsoleLogin'
  AND errormessage = 'Failed authentication'
  AND eventtime BETWEEN '2020-01-01T00:00:00Z' AND '2099-12-31T23:59:59Z'
GROUP BY useridentity.username
ORDER BY failures DESC, username
"""


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli.app", *args], capture_output=True,
                          text=True, env={**os.environ, "TRAILPIPE_LOG__FORMAT": "json", **env},
                          timeout=180)


@pytest.mark.usefixtures("no_documented_topics")
def test_lake_counts_match_the_producer_and_athena_sql_runs(kafka, make_topic, unique,
                                                            tmp_path: Path) -> None:
    topic = make_topic("events", 6)
    lake = f"file://{tmp_path}/lake"
    env = {"TRAILPIPE_TOPICS__EVENTS": topic, "TRAILPIPE_STORAGE__LAKE": lake}
    # The archiver publishes a notice per object on audit.deliveries.v1 (same settings as the
    # CLI tests, so the tests pass in any order).
    assert cli("topics", "create", "--bootstrap", kafka.bootstrap,
               env={"TRAILPIPE_TOPICS__PARTITIONS": "2"}).returncode == 0
    made = cli("produce", "generator", "--count", "20000", "--rate", "1000000", "--seed", "11",
               "--bootstrap", kafka.bootstrap, env=env)
    assert made.returncode == 0, made.stderr[-2000:]
    assert json.loads(made.stdout.splitlines()[-1])["produced"] == 20000

    cfg = load_config(env={}, overrides={"kafka.bootstrap": kafka.bootstrap,
                                         "storage.lake": lake, "topics.events": topic,
                                         "archiver.group": f"arch-{unique}",
                                         "archiver.max_age_ms": 1000})
    stats = build_registered("archiver", Context(cfg, kafka.bootstrap)).run(idle_exit_s=4)
    assert stats.consumed == 20000 and stats.dead_lettered == 0

    records = [from_avro(decode(m.value()))
               for m in read_all(kafka.bootstrap, topic, expected=20000)]
    keys = Counter(m.key().decode() for m in read_all(kafka.bootstrap, topic, expected=20000))
    counted = cli("lake", "query", "SELECT account, region, count(*) AS n FROM cloudtrail "
                  "GROUP BY ALL", "--format", "json", env=env)
    assert counted.returncode == 0, counted.stderr[-2000:]
    lake_counts = {f"{r['account']}|{r['region']}": r["n"]
                   for r in map(json.loads, counted.stdout.splitlines())}
    assert lake_counts == dict(keys)  # per account and region, exactly the producer's counts

    athena = cli("lake", "query", FAILED_LOGINS_BY_USER, "--format", "json", env=env)
    assert athena.returncode == 0, athena.stderr[-2000:]
    got = {r["username"]: r["failures"] for r in map(json.loads, athena.stdout.splitlines())}
    want = Counter(r["userIdentity"].get("userName") for r in records
                   if r.get("eventName") == "ConsoleLogin"
                   and r.get("errorMessage") == "Failed authentication")
    assert got == dict(want) and sum(got.values()) > 0
