"""Kafka runtime jars from Maven Central (no Docker, no tarball): resolve once, cache by version.

``infra/kafka/pom.xml`` pins ``kafka.version``; ``ensure_kafka_libs`` copies that runtime classpath
into ``<repo_root>/var/kafka/libs-<version>/`` with ``mvn dependency:copy-dependencies``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from pipeline.dev.model import DevClusterError

POM = Path("infra/kafka/pom.xml")
LOG4J2 = Path("infra/kafka/log4j2.properties")
_MARKER = ".complete"
_POM_NS = "{http://maven.apache.org/POM/4.0.0}"


def find_repo_root(start: Path | None = None) -> Path:
    """Return the nearest directory at or above ``start`` (default: this package, then the cwd)
    that contains ``infra/kafka/pom.xml``; raise DevClusterError if there is none (an installed
    wheel has none: infra/ is not package data)."""
    starts = [start] if start is not None else [Path(__file__).resolve().parent, Path.cwd()]
    for base in starts:
        for cand in [base.resolve(), *base.resolve().parents]:
            if (cand / POM).is_file():
                return cand
    # An installed wheel has no infra/: say what to do instead of only what is missing.
    raise DevClusterError(
        f"cannot find {POM} above {', '.join(str(s) for s in starts)}: the local dev cluster "
        "runs from a source checkout of trailpipe (run there), or use your own Kafka "
        "(--bootstrap / [kafka] bootstrap)")


def pom_property(pom: Path, name: str) -> str:
    """The ``<properties><name>`` value of a pom; raise DevClusterError if it is missing."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DevClusterError(f"cannot read {pom}: {exc}") from exc
    node = root.find(f"{_POM_NS}properties/{_POM_NS}{name}")
    if node is None:
        node = root.find(f"properties/{name}")
    if node is None or not (node.text or "").strip():
        raise DevClusterError(f"{pom} has no <properties><{name}>")
    return (node.text or "").strip()


def kafka_version(repo_root: Path) -> str:
    """The ``<kafka.version>`` property of ``infra/kafka/pom.xml``."""
    return pom_property(repo_root / POM, "kafka.version")


def run_mvn(pom: Path, goal_args: list[str], what: str, timeout_s: float = 900) -> None:
    """Run ``mvn -q -B -f <pom> <goal_args>``; raise DevClusterError (with the output's tail) if
    Maven is missing, fails or takes longer than ``timeout_s``. ``what`` names the download."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevClusterError(f"Maven ('mvn') is not on PATH; it is needed once to fetch {what}")
    argv = [mvn, "-q", "-B", "-f", str(pom), *goal_args]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DevClusterError(f"mvn {goal_args[0]} timed out after {timeout_s:g} s") from exc
    if res.returncode != 0:
        out = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
        raise DevClusterError(f"mvn failed (exit {res.returncode}):\n{out}")


def _run_mvn(repo_root: Path, out_dir: Path) -> None:
    run_mvn(repo_root / POM, ["dependency:copy-dependencies", f"-DoutputDirectory={out_dir}",
                              "-DincludeScope=runtime"], "Kafka jars")


def cached_build(target: Path, version: str, build: Callable[[Path], None]) -> Path:
    """Make ``target`` by running ``build(tmp)`` in a temp dir beside it, then renaming it into
    place with a marker file, so ``target`` is either complete or absent; a complete one is
    returned at once. ``build`` raises DevClusterError when it cannot produce the content."""
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        (tmp / _MARKER).write_text(version + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)  # an interrupted copy (no marker)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():  # lost a race against a broken copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_kafka_libs(repo_root: Path) -> tuple[Path, str]:
    """Return ``(libs_dir, kafka_version)`` with every runtime jar in ``libs_dir``
    (``var/kafka/libs-<version>/``, built once by Maven; see :func:`cached_build`).
    Raises DevClusterError if Maven is missing or fails."""
    version = kafka_version(repo_root)

    def build(tmp: Path) -> None:
        _run_mvn(repo_root, tmp)
        if not any(tmp.glob("kafka_2.13-*.jar")):
            raise DevClusterError(f"mvn produced no kafka_2.13 jar in {tmp}")

    return cached_build(repo_root / "var" / "kafka" / f"libs-{version}", version, build), version
