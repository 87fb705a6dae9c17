"""The ``alert`` scenario's pure parts: the latency percentile, the alerter config it writes,
the generated events it fills with. No Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is a top-level package of the repo, not installed into the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.alert_latency import percentile
from bench.alert_setup import alert_topics, encoded, generator, write_config
from pipeline.config import load_config
from pipeline.events.wire import decode
from producers.generator.scenarios import scenario_of


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, 3.0], 50) == 2


def test_written_config_loads_with_every_topic_and_the_sigma_dir(tmp_path: Path) -> None:
    topics = alert_topics("t1")
    path = tmp_path / "alerter.toml"
    write_config(path, "127.0.0.1:9092", topics, "bench-group", tmp_path / "sigma")
    cfg = load_config(path, env={})
    assert cfg.kafka.bootstrap == "127.0.0.1:9092"
    assert {role: getattr(cfg.topics, role) for role in topics} == topics
    assert cfg.alerter.group == cfg.alerter.transactional_id == "bench-group"
    assert cfg.alerter.sigma_paths == [tmp_path / "sigma"]
    assert cfg.alerter.default_pack


def test_generated_events_carry_attack_scenarios_and_decode() -> None:
    gen = generator(start_ms=1_764_000_000_000, accounts=3, events_per_s=200.0,
                    scenario_every=1_000)
    records = list(gen.records(2_000))
    assert {scenario_of(r) for r in records} - {None}  # attacks are mixed in
    pairs = list(encoded(records[:50]))
    assert len(pairs) == 50
    for (key, value), record in zip(pairs, records, strict=False):
        assert key.decode().startswith(record["recipientAccountId"])
        assert decode(value)["eventID"] == record["eventID"]
