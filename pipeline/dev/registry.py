"""Local Confluent-compatible Schema Registry for dev/tests: Apicurio Registry on 127.0.0.1.

``infra/schema-registry/pom.xml`` pins ``apicurio.version``; ``ensure_registry_app`` fetches the
all-in-one app tarball from Maven Central once (``mvn dependency:copy``) and unpacks it into
``<repo_root>/var/schema-registry/<version>/``. The server keeps its schemas in memory (H2), so
every start is empty; the launcher sets the global compatibility level to BACKWARD, Confluent's
default (Apicurio's own default is NONE). Clients (confluent-kafka's ``SchemaRegistryClient``) use
``<base>/apis/ccompat/v7``, Apicurio's implementation of the Confluent REST API.

Known difference from Confluent's registry: Apicurio compares schema text byte for byte when it
decides whether a registration is new, so the same schema with other whitespace becomes a new
version (confluent-kafka's serializers always send the same text, so ids stay stable).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.dev import kafka_config as kc
from pipeline.dev import procs
from pipeline.dev.libs import cached_build, pom_property, run_mvn
from pipeline.dev.model import HOST, DevClusterError, RegistryRecord

POM = Path("infra/schema-registry/pom.xml")
CCOMPAT_PATH = "/apis/ccompat/v7"
LOG = Path("schema-registry") / "registry.log"
"""Server log, relative to the state dir (the directory is also the process's cwd)."""
JVM_OPTS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true"]
"""C1 only and the serial GC: starts in ~2 s instead of ~3-5 s; plenty for a dev registry."""
DEFAULT_COMPATIBILITY = "BACKWARD"


def registry_version(repo_root: Path) -> str:
    """The ``<apicurio.version>`` property of ``infra/schema-registry/pom.xml``."""
    return pom_property(repo_root / POM, "apicurio.version")


def _runner_jar(app_dir: Path, version: str) -> Path:
    return app_dir / f"apicurio-registry-app-{version}-runner.jar"


def _unpack(tarball: Path, into: Path) -> None:
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(into, filter="data")  # no absolute paths, links out, devices
    except (OSError, tarfile.TarError) as exc:
        raise DevClusterError(f"cannot unpack {tarball}: {exc}") from exc


def ensure_registry_app(repo_root: Path) -> tuple[Path, str]:
    """Return ``(runner_jar, version)`` of the unpacked Apicurio Registry app.

    The first call runs Maven (~142 MB, then cached in ~/.m2) and unpacks the tarball into
    ``var/schema-registry/<version>/`` (complete or absent: :func:`cached_build`); later calls
    return at once. Raises DevClusterError if Maven is missing or fails, or the tarball holds
    no runner jar.
    """
    version = registry_version(repo_root)

    def build(tmp: Path) -> None:
        download = tmp / "download"
        run_mvn(repo_root / POM, ["dependency:copy", f"-DoutputDirectory={download}"],
                "the Apicurio Registry app")
        tarballs = sorted(download.glob("*.tar.gz"))
        if len(tarballs) != 1:
            raise DevClusterError(f"mvn produced {len(tarballs)} tarballs in {download}")
        _unpack(tarballs[0], tmp)
        shutil.rmtree(download)
        if not _runner_jar(tmp, version).is_file():
            raise DevClusterError(f"{tarballs[0].name} holds no {_runner_jar(tmp, version).name}")

    app = cached_build(repo_root / "var" / "schema-registry" / version, version, build)
    return _runner_jar(app, version), version


def url(port: int) -> str:
    """The Confluent-compatible API base URL (what ``SchemaRegistryClient`` takes as ``url``)."""
    return f"http://{HOST}:{port}{CCOMPAT_PATH}"


def answers(port: int, timeout_s: float = 1.0) -> bool:
    """True if the registry on ``port`` serves ``GET /subjects`` (200 with a JSON list)."""
    try:
        with urllib.request.urlopen(url(port) + "/subjects", timeout=timeout_s) as resp:
            return resp.status == 200 and isinstance(json.loads(resp.read()), list)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def server_argv(jar: Path, port: int, state_dir: Path) -> list[str]:
    """The exact java command line of the registry (also used to recognise it later)."""
    return [
        kc.java_bin(), *JVM_OPTS,
        f"-Dtrailpipe.dev.registry={state_dir.resolve()}",
        f"-Dquarkus.http.host={HOST}", f"-Dquarkus.http.port={port}",
        "-jar", str(jar.resolve()),
    ]


def spawn(state_dir: Path, jar: Path, version: str) -> RegistryRecord:
    """Start the registry on a free loopback port without waiting for it (see ``wait_ready``)."""
    port = procs.free_port()
    log = state_dir / LOG
    proc = procs.spawn(server_argv(jar, port, state_dir), log, cwd=_mkdir(log.parent))
    return RegistryRecord(port=port, version=version, proc=proc)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_compatibility(port: int, level: str = DEFAULT_COMPATIBILITY) -> None:
    """Set the registry's global compatibility level; raise DevClusterError if it refuses."""
    body = json.dumps({"compatibility": level}).encode()
    req = urllib.request.Request(url(port) + "/config", data=body, method="PUT", headers={
        "Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=5.0) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise DevClusterError(f"cannot set compatibility {level} on {url(port)}: {exc}") from exc


def wait_ready(state_dir: Path, rec: RegistryRecord, deadline: float) -> None:
    """Wait until the registry answers, before ``deadline`` (time.monotonic), and set its global
    compatibility to BACKWARD; otherwise stop it and raise DevClusterError with its log tail."""
    try:
        while not answers(rec.port):
            if not procs.is_ours(rec.proc) or time.monotonic() >= deadline:
                raise DevClusterError(f"schema registry did not answer on {url(rec.port)}")
            time.sleep(0.1)
        set_compatibility(rec.port)
    except DevClusterError as exc:
        procs.stop(rec.proc, grace_s=3.0)
        raise DevClusterError(f"{exc}; last lines of {state_dir / LOG}:\n"
                              + procs.tail(state_dir / LOG)) from None


def start(state_dir: Path, repo_root: Path, timeout_s: float) -> RegistryRecord:
    """Fetch the app if needed (not counted in ``timeout_s``), start it and wait for it."""
    jar, version = ensure_registry_app(repo_root)
    rec = spawn(state_dir, jar, version)
    wait_ready(state_dir, rec, time.monotonic() + timeout_s)
    return rec
