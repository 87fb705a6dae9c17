"""``python -m bench [SCENARIO ...]``: run benchmark scenarios, merge results into results.json.

Without ``--bootstrap`` a 1-broker dev cluster is started in ``var/bench-cluster`` and stopped
(and purged) at the end, unless it was already running before, in which case it is left alone.
Each scenario's entry is written as soon as it finishes, so a later failure keeps earlier ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from bench import (
    aggregate_bench,
    alert_bench,
    archive_bench,
    consume_bench,
    mirror_bench,
    produce_bench,
    replay_bench,
    runner_bench,
)
from bench.common import BenchContext, BenchError, Scenario
from bench.results import record_result, run_metadata
from pipeline.config import LogConfig
from pipeline.dev import DevClusterError, down, find_repo_root, status, up
from pipeline.logs import configure_logging

SCENARIOS: dict[str, Scenario] = {
    "runner": runner_bench.SCENARIO,
    "produce": produce_bench.SCENARIO,
    "archive": archive_bench.SCENARIO,
    "consume": consume_bench.SCENARIO,
    "alert": alert_bench.SCENARIO,
    "aggregate": aggregate_bench.SCENARIO,
    "mirror": mirror_bench.SCENARIO,
    "replay": replay_bench.SCENARIO,
}
RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
CLUSTER_DIR = Path("var") / "bench-cluster"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    known = ", ".join(SCENARIOS)
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=f"Benchmarks. Scenarios: {known}.")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenarios to run (default: all)")
    parser.add_argument("--bootstrap", help="use this cluster instead of starting one")
    parser.add_argument("--records", type=int, default=300_000, help="records to fill")
    parser.add_argument("--record-bytes", type=int, default=1024, help="bytes per record")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="results file")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {known}")
    if args.records < 1 or args.record_bytes < 1:
        parser.error("--records and --record-bytes must be positive")
    args.scenarios = list(dict.fromkeys(args.scenarios)) or list(SCENARIOS)
    return args


def _already_running(state_dir: Path) -> bool:
    info = status(state_dir)
    return info is not None and all(b.alive for b in info.brokers)


@contextmanager
def cluster(bootstrap: str | None, repo_root: Path,
            console: Console) -> Iterator[tuple[str, str | None]]:
    """Yield ``(bootstrap, kafka_version)``; start and finally stop a dev broker if needed."""
    if bootstrap:
        yield bootstrap, None  # an external cluster's version is not known to librdkafka
        return
    state_dir = repo_root / CLUSTER_DIR
    ours = not _already_running(state_dir)
    try:
        with console.status("starting a 1-broker cluster in var/bench-cluster"):
            info = up(state_dir, brokers=1)
        console.print(f"cluster: Kafka {info.kafka_version} at {info.bootstrap}")
        yield info.bootstrap, info.kafka_version
    finally:
        if ours:
            down(state_dir, purge=True)


def run_all(args: argparse.Namespace, console: Console) -> None:
    repo_root = find_repo_root()
    with cluster(args.bootstrap, repo_root, console) as (bootstrap, version):
        ctx = BenchContext(bootstrap, args.records, args.record_bytes, repo_root, console)
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            result = scenario.run(ctx)
            record_result(args.results, name, result, run_metadata(version))
            print(scenario.summary(result), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(LogConfig(level="warning"))
    console = Console(stderr=True)
    start = time.monotonic()
    try:
        run_all(args, console)
    except (BenchError, DevClusterError) as exc:
        console.print(f"[red]bench failed:[/] {exc}")
        return 1
    console.print(f"bench done in {time.monotonic() - start:.0f}s; results in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
