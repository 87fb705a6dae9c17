"""``python -m bench.alert_profile BOOTSTRAP [EVENTS]``: where the alerter's CPU time goes.

Fills fresh topics with EVENTS (default 100,000) events as the ``alert`` scenario does, runs
the alerter daemon in this process (the SigmaHQ rules plus the default pack) under cProfile,
timed by process CPU time (so waits on Kafka do not count), until it has been idle for
IDLE_EXIT_S; prints the top entries by cumulative and by own time and writes the stats to
``var/bench-alert/alerter.prof`` (``python -m pstats`` reads it). Topics and group go after.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
import uuid

from bench.alert_setup import RUN_DIR, SIGMA_DIR, alert_topics, create_topics, delete_topics, fill
from pipeline.config import LogConfig, load_config
from pipeline.daemon import Context, build_registered
from pipeline.dev import find_repo_root
from pipeline.logs import configure_logging

IDLE_EXIT_S = 3.0
TOP = 40


def profile(bootstrap: str, events: int) -> pstats.Stats:
    repo = find_repo_root()
    tag = uuid.uuid4().hex[:8]
    topics, group = alert_topics(f"prof-{tag}"), f"bench-alert-prof-{tag}"
    overrides = {"kafka.bootstrap": bootstrap,
                 **{f"topics.{role}": name for role, name in topics.items()},
                 "alerter.group": group, "alerter.transactional_id": group,
                 "alerter.sigma_paths": [str((repo / SIGMA_DIR).resolve())]}
    profiler = cProfile.Profile(time.process_time)
    try:
        create_topics(bootstrap, topics)
        print(f"filled {events:,} events in {fill(bootstrap, topics['events'], events):.1f}s",
              flush=True)
        daemon = build_registered("alerter", Context(load_config(env={}, overrides=overrides),
                                                     bootstrap))
        start = time.monotonic()
        profiler.enable()
        stats = daemon.run(idle_exit_s=IDLE_EXIT_S)
        profiler.disable()
        print(f"{daemon.summary(stats)}\nrun {time.monotonic() - start - IDLE_EXIT_S:.1f}s "
              f"wall (idle exit excluded)", flush=True)
    finally:
        delete_topics(bootstrap, topics.values(), [group])
    out = repo / RUN_DIR
    out.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(out / "alerter.prof")
    return pstats.Stats(profiler)


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    configure_logging(LogConfig(level="warning"))
    stats = profile(argv[0], int(argv[1]) if len(argv) > 1 else 100_000)
    stats.sort_stats("cumulative").print_stats(TOP)
    stats.sort_stats("tottime").print_stats(TOP)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
