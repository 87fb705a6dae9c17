"""What an installed wheel needs: the Avro schemas as package data read through
importlib.resources (not a source-tree path), ``trailpipe --version`` and the command list the
wheel smoke test (``.ci/wheel-smoke``) runs ``--help`` of, and what the dev cluster says outside
a source checkout. No services."""

from __future__ import annotations

import fnmatch
import io
import tomllib
import zipfile
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import pytest
from packaging.version import Version
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.cli.command_paths import command_paths
from pipeline.dev.libs import find_repo_root
from pipeline.dev.model import DevClusterError
from pipeline.events.schemas import SchemaRegistry, default_registry

REPO = Path(__file__).resolve().parents[2]
PACKAGED = files("schemas")


def _packaged_avsc_names() -> list[str]:
    return sorted(p.name for p in PACKAGED.iterdir() if p.name.endswith(".avsc"))


def test_the_registry_holds_every_packaged_schema_and_only_one_copy_exists() -> None:
    names = _packaged_avsc_names()
    assert "ApiCallEvent.v1.avsc" in names
    assert sorted(e.path.name for e in default_registry().entries()) == names
    # One copy: the schemas/ folder of the fixed layout, and no .avsc anywhere else.
    assert sorted(p.name for p in (REPO / "schemas").glob("*.avsc")) == names
    elsewhere = [p for d in ("pipeline", "producers", "consumers")
                 for p in (REPO / d).rglob("*.avsc")]
    assert elsewhere == []


def test_the_package_data_patterns_put_every_schema_in_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas" in config["tool"]["setuptools"]["packages"]["find"]["include"]
    patterns = config["tool"]["setuptools"]["package-data"]["schemas"]
    for name in _packaged_avsc_names():
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def test_schemas_load_from_a_zip_resource_as_from_the_package() -> None:
    # A zip-imported install offers only the Traversable API (no glob, no resolve, no open()).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in _packaged_avsc_names():
            zf.writestr(f"pkg/avsc/{name}", (PACKAGED / name).read_bytes())
        zf.writestr("pkg/avsc/notes.txt", "not a schema")
    with zipfile.ZipFile(buffer) as zf:
        zipped = SchemaRegistry.from_dir(zipfile.Path(zf, "pkg/avsc/"))
        got = {(e.name, e.version, e.fingerprint) for e in zipped.entries()}
    want = {(e.name, e.version, e.fingerprint) for e in default_registry().entries()}
    assert got == want


def test_version_prints_the_installed_distribution_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    installed = version("trailpipe")
    assert result.output == f"trailpipe {installed}\n"
    Version(installed)  # a PEP 440 version, not a placeholder


def test_every_discovered_command_path_has_help() -> None:
    paths = command_paths(app)
    assert [] in paths
    assert {("events", "encode"), ("events", "decode"), ("lake", "query")} <= {
        tuple(p) for p in paths}
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], prog_name="trailpipe")
        assert result.exit_code == 0, (path, result.output)
        assert " ".join(["trailpipe", *path]) in " ".join(result.output.split())


def test_outside_a_checkout_the_dev_cluster_says_what_to_do(tmp_path: Path) -> None:
    # What an installed wheel meets: infra/ (Kafka's pom) is not package data.
    with pytest.raises(DevClusterError, match=r"source checkout.*--bootstrap"):
        find_repo_root(tmp_path)
