"""Shared fixtures: one real Kafka cluster (and S3 endpoint) for the whole session.

Backends, chosen by environment:
- default: the local launcher (``pipeline.dev``) starts a KRaft broker and moto's S3 server under
  ``var/test-clusters/pytest-<pid>`` (stopped and removed at the end of the session);
- ``TRAILPIPE_TEST_BOOTSTRAP=host:port``: use an existing broker (and
  ``TRAILPIPE_TEST_S3_ENDPOINT`` for S3, else a local moto server is started);
- ``TRAILPIPE_TEST_KAFKA=testcontainers``: testcontainers' Kafka module (needs a Docker engine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
# One cluster per pytest session (by pid), so concurrent sessions never stop each other's broker.
TEST_STATE_DIR = REPO_ROOT / "var" / "test-clusters" / f"pytest-{os.getpid()}"


@dataclass
class TestCluster:
    bootstrap: str
    kafka_version: str
    s3_endpoint: str | None
    stop: Callable[[], None] = field(default=lambda: None)

    def client_config(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap}


_cluster: TestCluster | None = None


def _start_cluster() -> TestCluster:
    bootstrap = os.environ.get("TRAILPIPE_TEST_BOOTSTRAP")
    backend = os.environ.get("TRAILPIPE_TEST_KAFKA", "local")
    if bootstrap:
        return TestCluster(bootstrap, "external (unknown)",
                           os.environ.get("TRAILPIPE_TEST_S3_ENDPOINT"))
    if backend == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        image = os.environ.get("TRAILPIPE_TEST_KAFKA_IMAGE", "apache/kafka:4.1.1")
        container = KafkaContainer(image).with_kraft()
        container.start()
        return TestCluster(container.get_bootstrap_server(), image, None, container.stop)
    from pipeline.dev import down, up

    info = up(TEST_STATE_DIR, brokers=1, s3=True)

    def stop() -> None:
        down(TEST_STATE_DIR, purge=True)
        shutil.rmtree(TEST_STATE_DIR, ignore_errors=True)

    return TestCluster(info.bootstrap, info.kafka_version, info.s3_endpoint, stop)


def cluster() -> TestCluster:
    """The session's cluster, started on first use."""
    global _cluster
    if _cluster is None:
        _cluster = _start_cluster()
    return _cluster


def _wants_cluster(config: pytest.Config) -> bool:
    """Unit-only runs (``tests/unit`` or ``-m "not integration"``) start no services."""
    if "not integration" in (config.getoption("markexpr") or ""):
        return False
    args = [str(a).split("::")[0] for a in config.args] or ["tests"]
    return any("unit" not in Path(a).parts for a in args)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _wants_cluster(config):
        return ["kafka: not started (unit tests only)"]
    c = cluster()
    return [f"kafka: Apache Kafka {c.kafka_version} at {c.bootstrap}",
            f"s3 endpoint: {c.s3_endpoint or 'none'}"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _cluster is not None:
        _cluster.stop()


@pytest.fixture(scope="session")
def kafka() -> TestCluster:
    return cluster()


@pytest.fixture(scope="session")
def s3_endpoint(kafka: TestCluster) -> str:
    if kafka.s3_endpoint is None:
        pytest.fail("no S3 endpoint: set TRAILPIPE_TEST_S3_ENDPOINT with this Kafka backend")
    return kafka.s3_endpoint


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_topic(kafka: TestCluster, unique: str) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka.client_config())
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 3, **configs: str) -> str:
        name = f"test.{prefix}.{unique}.{len(created)}"
        fut = admin.create_topics([NewTopic(name, partitions, 1, config=configs)])[name]
        fut.result(timeout=30)
        created.append(name)
        return name

    yield make
    if created:
        for fut in admin.delete_topics(created, operation_timeout=30).values():
            # Cleanup only: a failed delete must not hide the test's own result.
            with contextlib.suppress(Exception):
                fut.result(timeout=30)


@pytest.fixture
def no_documented_topics(kafka: TestCluster) -> Iterator[None]:
    """For tests that create the documented topics (audit.events.v1, ...) with their own
    settings: start from none and leave none, so the order of tests does not matter."""
    from kit import delete_topics

    from pipeline.topics import DOCUMENTED_TOPICS

    delete_topics(kafka.bootstrap, DOCUMENTED_TOPICS)
    yield
    delete_topics(kafka.bootstrap, DOCUMENTED_TOPICS)
