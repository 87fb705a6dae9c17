"""``trailpipe siem subscribe|list|rotate|revoke``: per-SIEM principals (SCRAM or mTLS) with
exactly their ACL bindings, optional views, and ready-to-use client configs
(:mod:`pipeline.siem.service` does the work; this module parses and prints).

Secrets (passwords, keys) are only ever written to files of mode 0600; stdout names the files.
Exit codes: 0 success, 1 the cluster failed or refused, 2 bad arguments, config or CA files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from pipeline.cli.common import BootstrapOpt, ConfigOpt, build_config, fail, resolve_bootstrap
from pipeline.siem.plan import Auth, Format

app = typer.Typer(help="Subscribe SIEMs: principals, ACLs, views, client configs.",
                  no_args_is_help=True)
T = TypeVar("T")
ListOpt = list[str] | None
SCRAM_REAUTH_NOTE = ("Open SCRAM connections end at their next re-authentication "
                     "(broker setting connections.max.reauth.ms; `dev up --sasl` sets it; set "
                     "it on production brokers too).")
MTLS_REVOKE_NOTE = ("mTLS: removing the ACL bindings is what revokes; the certificate itself "
                    "stays valid until it expires (the dev CA publishes no CRL).")


def _service(config: Any, bootstrap: str | None) -> Any:
    from pipeline.siem.service import Siem, resolve_endpoints

    cfg = build_config(config, **{"kafka.bootstrap": bootstrap})
    return Siem(cfg, resolve_bootstrap(cfg), resolve_endpoints(cfg))


def _run(action: Callable[[], T]) -> T:
    """``action()``, turning its errors into exit codes with a clear message."""
    from confluent_kafka import KafkaException

    from pipeline.certs import CertificateError
    from pipeline.model import Unavailable
    from pipeline.producer import DeliveryError
    from pipeline.siem.plan import PlanError

    try:
        return action()
    except (PlanError, CertificateError) as exc:
        fail(2, [f"trailpipe: siem: {exc}"])
    except ValueError as exc:  # a topic the command needs is missing
        fail(2, [f"trailpipe: siem: {exc}"])
    except (KafkaException, DeliveryError, Unavailable) as exc:
        fail(1, [f"trailpipe: siem: the Kafka cluster failed: {exc}"])


@app.command("subscribe")
def subscribe(
    name: Annotated[str, typer.Argument(help="Subscription name: User:<name>, groups <name>.*")],
    topics: Annotated[str, typer.Option("--topics", help=(
        "Roles: events, alerts (comma list). json: the CloudTrail JSON mirror topics (events: "
        "the view topic when a view option is given); avro: the Avro topics."))],
    auth: Annotated[str, typer.Option("--auth", help=(
        "scram (SCRAM-SHA-512: needs librdkafka >= 2.6.1 or the Java client) or mtls (a client "
        "certificate CN=NAME signed by the cluster's CA; works with any librdkafka)."))] = "scram",
    fmt: Annotated[str, typer.Option("--format", help="json (CloudTrail JSON) or avro.")] = "json",
    account: Annotated[ListOpt, typer.Option("--account", help="View: only this account.")] = None,
    region: Annotated[ListOpt, typer.Option("--region", help="View: only this region.")] = None,
    event_source: Annotated[ListOpt, typer.Option(
        "--event-source", help="View: only this eventSource (e.g. iam.amazonaws.com).")] = None,
    event_name: Annotated[ListOpt, typer.Option(
        "--event-name", help="View: only this eventName.")] = None,
    read_only: Annotated[bool | None, typer.Option(
        "--read-only/--no-read-only", help="View: only read-only calls / only the others.")
    ] = None,
    errors: Annotated[bool | None, typer.Option(
        "--errors/--no-errors", help="View: only calls with an errorCode / only without.")
    ] = None,
    redact: Annotated[ListOpt, typer.Option("--redact", help=(
        "View: remove this dotted path (e.g. requestParameters.password, "
        "responseElements.credentials; reaches into the JSON members)."))] = None,
    hash_source_ip: Annotated[bool, typer.Option("--hash-source-ip", help=(
        "View: sourceIPAddress replaced by an HMAC-SHA256 under a key of this "
        "subscription."))] = False,
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Create or update a SIEM's principal, its exact ACL bindings, optional view and client
    configs (idempotent: a re-run keeps the credential and changes nothing)."""
    from pipeline.siem.model import ViewFilter, ViewRedact
    from pipeline.siem.plan import PlanError, SubscribeRequest, check_name, parse_roles

    def request() -> SubscribeRequest:
        if auth not in ("scram", "mtls") or fmt not in ("json", "avro"):
            raise PlanError("--auth is scram or mtls; --format is json or avro")
        flt = ViewFilter(accounts=account or [], regions=region or [],
                         event_sources=event_source or [], event_names=event_name or [],
                         read_only=read_only, errors=errors)
        red = ViewRedact(remove=redact or [], hash_source_ip=hash_source_ip)
        auth_: Auth = "scram" if auth == "scram" else "mtls"
        fmt_: Format = "json" if fmt == "json" else "avro"
        return SubscribeRequest(check_name(name), parse_roles(topics), auth_, fmt_, flt, red)

    req = _run(request)
    siem = _service(config, bootstrap)
    out = _run(lambda: siem.subscribe(req))
    _print_subscribed(out)


def _print_subscribed(out: Any) -> None:
    from pipeline.siem.clients import JAVA_FILE, LIBRDKAFKA_FILE, SCRAM_CLIENTS_NOTE
    from pipeline.siem.plan import describe_view

    sub, directory = out.sub, out.files[0].parent
    typer.echo(f"subscription {sub.name}: principal {sub.principal}, auth {sub.auth}, "
               f"format {sub.format}")
    typer.echo(f"  may read (READ, LITERAL): {', '.join(sub.topics)}")
    typer.echo(f"  consumer groups (READ, PREFIXED): {sub.group_prefix}*")
    typer.echo(f"  view: {describe_view(sub)}")
    typer.echo(f"  ACL bindings: {len(out.bindings)}"
               + (f" ({len(out.removed)} no longer wanted removed)" if out.removed else ""))
    typer.echo(f"  credential: {'new' if out.new_credential else 'kept (its files exist)'}")
    for note in out.notes:
        typer.echo(f"  {note}")
    typer.echo(f"files (mode 0600, secrets: never paste them into tickets) in {directory}:")
    for path in out.files:
        typer.echo(f"  {path}")
    topic_args = " ".join(sub.topics)
    typer.echo("read with:")
    typer.echo(f"  kcat -F {directory / LIBRDKAFKA_FILE} -G {sub.name}.kcat {topic_args}")
    typer.echo(f"  kafka-console-consumer.sh --bootstrap-server {out.bootstrap} "
               f"--command-config {directory / JAVA_FILE} --topic {sub.topics[0]}")
    typer.echo("  Splunk Connect for Kafka: splunk-connect-for-kafka.properties (add the HEC "
               "URI and token); Filebeat / Elastic Agent: elastic-kafka-input.yml")
    if sub.auth == "scram":
        typer.echo(SCRAM_CLIENTS_NOTE)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
          config: ConfigOpt = None, bootstrap: BootstrapOpt = None) -> None:
    """Subscriptions with their topics, view and the lag of their consumer groups."""
    from pipeline.siem.plan import describe_view

    siem = _service(config, bootstrap)
    rows = _run(siem.lags)
    docs = [{"name": sub.name, "principal": sub.principal, "auth": sub.auth,
             "format": sub.format, "topics": sub.topics, "view": describe_view(sub),
             "groups": [{"group": lag.group, "topic": lag.topic, "partition": lag.partition,
                         "committed": lag.committed, "end": lag.end, "lag": lag.lag_events}
                        for lag in lags]} for sub, lags in rows]
    if as_json:
        typer.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        typer.echo("no subscriptions")
    for doc in docs:
        typer.echo(f"{doc['name']}  {doc['principal']}  auth={doc['auth']}  "
                   f"format={doc['format']}  "
                   f"topics={','.join(doc['topics'])}  view={doc['view']}")
        lags: dict[str, int] = {}
        for g in doc["groups"]:
            lags[g["group"]] = lags.get(g["group"], 0) + g["lag"]
        for group, lag in sorted(lags.items()):
            typer.echo(f"  group {group}: lag {lag} records")
        if not lags:
            typer.echo("  no consumer group has committed yet")


@app.command("rotate")
def rotate(name: Annotated[str, typer.Argument()], config: ConfigOpt = None,
           bootstrap: BootstrapOpt = None) -> None:
    """A new password (scram: the old one fails from the next authentication) or a new key
    and certificate (mtls); the client configs are rewritten."""
    siem = _service(config, bootstrap)
    out = _run(lambda: siem.rotate(name))
    what = "password" if out.sub.auth == "scram" else "key and certificate"
    typer.echo(f"subscription {name}: new {what}; files rewritten:")
    for path in out.files:
        typer.echo(f"  {path}")
    if out.sub.auth == "scram":
        typer.echo("The old password fails from the next authentication. " + SCRAM_REAUTH_NOTE)
    else:
        typer.echo("The old certificate stays valid until it expires unless the subscription "
                   "is revoked (the dev CA publishes no CRL).")


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument()], config: ConfigOpt = None,
           bootstrap: BootstrapOpt = None) -> None:
    """Delete a subscription: ACL bindings, SCRAM credential, record, view topic, files."""
    siem = _service(config, bootstrap)
    out = _run(lambda: siem.revoke(name))
    typer.echo(f"subscription {name}: {len(out.removed)} ACL bindings deleted")
    for note in out.notes:
        typer.echo(f"  {note}")
    for path in out.files:
        typer.echo(f"  removed {path}")
    typer.echo(SCRAM_REAUTH_NOTE)
    typer.echo(MTLS_REVOKE_NOTE)
