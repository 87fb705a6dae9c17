"""``trailpipe lake validate|keygen|digester``: integrity digests of the lake.

Mount with ``register(lake_app)`` (or use ``app``). Exit codes: 0 success (validate: the lake is
clean), 1 validation failures or a runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.common import (
    BootstrapOpt,
    ConfigOpt,
    LakeOpt,
    S3Opt,
    build_config,
    fail,
)
from pipeline.config import Config
from pipeline.lake.digest.config import DigestConfig

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PublicKey,
    )

    from pipeline.lake.validate import Report

app = typer.Typer(help="Integrity digests of the lake: sign, chain, validate.",
                  no_args_is_help=True)

PublicKeyOpt = Annotated[list[Path] | None, typer.Option(
    "--public-key", help="Trusted Ed25519 public key (PEM); repeat for rotated keys. Default: "
    "the public half of digest.private_key plus digest.trusted_public_keys.")]


def digest_config(cfg: Config) -> DigestConfig:
    """The ``[digest]`` section."""
    return cfg.digest


def _trusted(cfg: Config, paths: list[Path] | None) -> dict[str, Ed25519PublicKey]:
    from pipeline.lake.keys import (
        SigningKeyError,
        configured_public_keys,
        load_public_key,
        trusted_keys,
    )

    dcfg = digest_config(cfg)
    try:
        if paths:
            return trusted_keys(load_public_key(str(p)) for p in paths)
        private = dcfg.private_key.get_secret_value() if dcfg.private_key else None
        keys = configured_public_keys(dcfg.trusted_public_keys, private)
    except SigningKeyError as exc:
        fail(2, [f"trailpipe: {exc}"])
    if not keys:
        fail(2, ["trailpipe: no trusted public key: pass --public-key PATH or configure "
                 "digest.private_key / digest.trusted_public_keys"])
    return trusted_keys(keys)


def _time(value: str | None, flag: str) -> int | None:
    from pipeline.lake.digest.model import parse_iso_ms

    if value is None:
        return None
    try:
        return parse_iso_ms(value)
    except ValueError:
        fail(2, [f"trailpipe: {flag} {value!r} is not an ISO 8601 time (2024-03-10T08:00Z)"])


@app.command("validate")
def validate(
    config: ConfigOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
    from_: Annotated[str | None, typer.Option("--from", help="ISO time; hours starting at "
                                              "or after it (floored to the hour).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO time, exclusive; every hour "
                                           "before it must have a digest.")] = None,
    public_key: PublicKeyOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Check the digest chain, every signature, every listed object's SHA-256, and report
    objects no digest lists. One line per problem, then a summary; exit 1 on any failure."""
    from pipeline.lake.store import StoreError, open_lake
    from pipeline.lake.validate import validate_lake

    cfg = build_config(config, **{"storage.lake": lake, "storage.s3_endpoint": s3_endpoint})
    if fmt not in ("text", "json"):
        fail(2, [f"trailpipe: --format must be text or json, not {fmt!r}"])
    from_ms, to_ms = _time(from_, "--from"), _time(to, "--to")
    keys = _trusted(cfg, public_key)
    try:
        store = open_lake(cfg.storage)
        report = validate_lake(store, keys, from_ms=from_ms, to_ms=to_ms)
    except (StoreError, ValueError) as exc:
        fail(1, [f"trailpipe: cannot read the lake {cfg.storage.lake}: {exc}"])
    _print_report(report, cfg.storage.lake, fmt)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: Report, lake: str, fmt: str) -> None:
    from pipeline.lake.digest.model import iso_ms

    if fmt == "json":
        typer.echo(json.dumps({"lake": lake, **report.to_dict()}, indent=2))
        return
    for p in report.problems:
        typer.echo(f"{p.kind:<22} {p.key}" + (f"  ({p.detail})" if p.detail else ""))
    span = (f" ({iso_ms(report.first_hour_ms)} .. {iso_ms(report.last_hour_ms)})"
            if report.first_hour_ms is not None and report.last_hour_ms is not None else "")
    notes = len(report.problems) - report.failures
    typer.echo(f"{'OK' if report.ok else 'FAILED'}: {report.failures} failure(s), "
               f"{notes} note(s); {report.digests} digest(s){span}, "
               f"{report.objects_verified} object(s) verified, "
               f"{report.objects_scanned} object(s) under events/ scanned")


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Private key path (public: PATH.pub).")],
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write a new Ed25519 key pair for signing digests: the private key (mode 0600) and the
    public key beside it (PATH.pub). Prints the paths and the public key fingerprint."""
    from pipeline.lake.keys import SigningKeyError, generate_keypair

    try:
        private, public, fp = generate_keypair(out, force=force)
    except SigningKeyError as exc:
        fail(1, [f"trailpipe: {exc}"])
    typer.echo(json.dumps({"private_key": str(private), "public_key": str(public),
                           "fingerprint": fp}))


@app.command("digester")
def digester(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    lake: LakeOpt = None,
    s3_endpoint: S3Opt = None,
    idle_exit_s: Annotated[float | None, typer.Option(
        "--idle-exit-s", help="Stop after this long without a notice (tests, backfills).")
    ] = None,
) -> None:
    """Run the digester daemon: deliveries topic in, one signed, chained digest per hour out
    (run exactly one per lake); the same as ``trailpipe consume digester``. SIGTERM/SIGINT stop
    it cleanly."""
    from pipeline.cli.consume import run_daemon

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap, "storage.lake": lake,
                                  "storage.s3_endpoint": s3_endpoint})
    typer.echo(json.dumps(run_daemon("digester", cfg, idle_exit_s=idle_exit_s)))


def register(lake_app: typer.Typer) -> None:
    """Add validate, keygen and digester to an existing ``lake`` command group."""
    lake_app.command("validate")(validate)
    lake_app.command("keygen")(keygen)
    lake_app.command("digester")(digester)


if __name__ == "__main__":  # `python -m pipeline.cli.lake` until mounted as `trailpipe lake`
    app()
