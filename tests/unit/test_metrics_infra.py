"""The Grafana dashboard and the Prometheus scrape config in infra/: they parse, and every
trailpipe metric the dashboard queries is one a daemon exports (names.all_names)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.metrics import names

INFRA = Path(__file__).resolve().parents[2] / "infra"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_every_dashboard_metric_is_exported() -> None:
    dashboard = json.loads((INFRA / "grafana" / "trailpipe.json").read_text())
    used = {m for e in exprs(dashboard) for m in re.findall(r"\btrailpipe_[a-z_]+", e)}
    assert used, "the dashboard queries no trailpipe metric"
    exported = names.all_names()
    unknown = {m for m in used if m not in exported
               and not any(m.endswith(s) and m.removesuffix(s) in exported
                           for s in HISTOGRAM_SUFFIXES)}
    assert not unknown, f"the dashboard queries metrics no daemon exports: {sorted(unknown)}"
    # ... and the core ones a user looks at first are on it.
    for core in (names.CONSUMED, names.DEAD_LETTERS, names.LAG, names.DELIVERY_ERRORS):
        assert core in used, core
    assert f"{names.FLUSH_SECONDS}_bucket" in used


def test_the_dashboard_panels_have_unique_ids_and_target_refs() -> None:
    dashboard = json.loads((INFRA / "grafana" / "trailpipe.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_the_scrape_config_finds_every_replica_of_every_daemon_and_producer() -> None:
    config = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]  # one address per replica: scaled services too
    assert (discovery["type"], discovery["port"]) == ("A", 9464)
    from pipeline.daemon import DAEMONS

    producers = {"http", "generator"}
    assert sorted(discovery["names"]) == sorted({*DAEMONS, *producers})
    assert all(name in compose for name in discovery["names"])  # real service names
    for name in producers:  # they serve the port Prometheus scrapes, and compose checks it
        assert "healthcheck" not in compose[name] or not compose[name]["healthcheck"].get(
            "disable")
