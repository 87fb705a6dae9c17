"""Ready-to-use client configs for one subscription, rendered as text (pure).

Every file names the subscription's own consumer group (``<name>.<tool>``, inside its PREFIXED
group grant), its bootstrap, its CA file and its credential: the SCRAM password, or (mTLS) the
key and certificate files. They are secrets (written mode 0600); nothing here is printed.

SCRAM needs librdkafka >= 2.6.1 (older builds send a final message Kafka 4 rejects) or the Java
client; the librdkafka file says so, and mTLS works with any librdkafka.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.siem.plan import Auth

SCRAM_MECHANISM = "SCRAM-SHA-512"
CA_FILE, KEY_FILE, CERT_FILE, PASSWORD_FILE = "ca.pem", "client.key", "client.pem", "password"
LIBRDKAFKA_FILE = "librdkafka.conf"
JAVA_FILE = "client.properties"
SPLUNK_FILE = "splunk-connect-for-kafka.properties"
ELASTIC_FILE = "elastic-kafka-input.yml"
SCRAM_CLIENTS_NOTE = ("SCRAM needs librdkafka >= 2.6.1 or the Java client: Debian 12's kcat and "
                      "rsyslog-kafka link librdkafka 2.0.2, whose SCRAM final message Kafka 4 "
                      "rejects (\"invalid credentials\"); with such clients use --auth mtls.")


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """Everything the configs of one subscription name. ``protocol`` is SASL_SSL or
    SASL_PLAINTEXT (scram) or SSL (mtls); ``secret`` is the password (scram) or the PEM
    private key (mtls, inlined only where a client cannot read an unencrypted key file);
    ``cert_pem`` is the client certificate (mtls)."""

    name: str
    auth: Auth
    protocol: str
    bootstrap: str
    topics: tuple[str, ...]
    secrets_dir: Path
    secret: str
    cert_pem: str = ""

    def path(self, file: str) -> str:
        return str((self.secrets_dir / file).resolve())

    def group(self, tool: str) -> str:
        return f"{self.name}.{tool}"

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def render_all(spec: ClientSpec) -> dict[str, str]:
    """File name -> content of every client config for ``spec``."""
    return {LIBRDKAFKA_FILE: librdkafka_conf(spec), JAVA_FILE: java_properties(spec),
            SPLUNK_FILE: splunk_properties(spec), ELASTIC_FILE: elastic_input(spec)}


def librdkafka_conf(spec: ClientSpec) -> str:
    """librdkafka properties (``kcat -F FILE``, rsyslog ``imkafka`` confParam, Python/Go)."""
    lines = [f"# trailpipe SIEM subscription {spec.name} ({spec.auth}); topics: "
             f"{', '.join(spec.topics)}",
             f"# kcat -F {spec.path(LIBRDKAFKA_FILE)} -G {spec.group('kcat')} "
             f"{' '.join(spec.topics)}"]
    if spec.auth == "scram":
        lines.append(f"# {SCRAM_CLIENTS_NOTE}")
    lines += [f"bootstrap.servers={spec.bootstrap}", f"security.protocol={spec.protocol}",
              f"group.id={spec.group('kcat')}"]
    if spec.tls:
        lines.append(f"ssl.ca.location={spec.path(CA_FILE)}")
    if spec.auth == "scram":
        lines += [f"sasl.mechanism={SCRAM_MECHANISM}", f"sasl.username={spec.name}",
                  f"sasl.password={spec.secret}"]
    else:
        lines += [f"ssl.certificate.location={spec.path(CERT_FILE)}",
                  f"ssl.key.location={spec.path(KEY_FILE)}"]
    return "\n".join(lines) + "\n"


def _java_security(spec: ClientSpec, prefix: str = "") -> list[str]:
    """The Java client's security settings (PEM trust and key stores: Kafka clients >= 2.7),
    each key prefixed with ``prefix`` (Kafka Connect's ``consumer.override.``)."""
    out = {"security.protocol": spec.protocol}
    if spec.tls:
        out |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": spec.path(CA_FILE)}
    if spec.auth == "scram":
        out |= {"sasl.mechanism": SCRAM_MECHANISM,
                "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
                f"required username=\"{spec.name}\" password=\"{spec.secret}\";"}
    else:
        # A PEM key *file* must be encrypted for the Java client; inline PEM may be plain.
        out |= {"ssl.keystore.type": "PEM",
                "ssl.keystore.key": _java_escape(spec.secret),
                "ssl.keystore.certificate.chain": _java_escape(spec.cert_pem)}
    return [f"{prefix}{k}={v}" for k, v in out.items()]


def _java_escape(pem: str) -> str:
    """A PEM block as one properties value (newlines as ``\\n`` escapes)."""
    return pem.strip().replace("\n", "\\n")


def java_properties(spec: ClientSpec) -> str:
    """The Java client's properties (``kafka-console-consumer --command-config FILE``).
    ``isolation.level=read_committed``: the Java client reads uncommitted records by default,
    and the mirror writes in transactions (an aborted one must never reach a SIEM)."""
    lines = [f"# trailpipe SIEM subscription {spec.name} ({spec.auth}); topics: "
             f"{', '.join(spec.topics)}",
             f"bootstrap.servers={spec.bootstrap}", f"group.id={spec.group('java')}",
             "isolation.level=read_committed", *_java_security(spec)]
    return "\n".join(lines) + "\n"


def splunk_properties(spec: ClientSpec) -> str:
    """A Splunk Connect for Kafka connector config: one HEC event of sourcetype
    ``aws:cloudtrail`` per message; the connector's consumer uses this subscription's
    credentials and group (worker: ``connector.client.config.override.policy=All``)."""
    lines = [
        f"# trailpipe SIEM subscription {spec.name}: Splunk Connect for Kafka (sink connector)",
        "# Fill in splunk.hec.uri and splunk.hec.token; the worker needs "
        "connector.client.config.override.policy=All",
        f"# and bootstrap.servers={spec.bootstrap} with the same security settings.",
        f"name={spec.group('splunk')}",
        "connector.class=com.splunk.kafka.connect.SplunkSinkConnector",
        "tasks.max=1",
        f"topics={','.join(spec.topics)}",
        "splunk.hec.uri=https://SPLUNK-HOST:8088",
        "splunk.hec.token=HEC-TOKEN",
        "splunk.hec.ack.enabled=true",
        "splunk.hec.raw=false",
        "splunk.sourcetypes=aws:cloudtrail",
        "key.converter=org.apache.kafka.connect.storage.StringConverter",
        "value.converter=org.apache.kafka.connect.storage.StringConverter",
        f"consumer.override.group.id={spec.group('splunk')}",
        "consumer.override.isolation.level=read_committed",
        *_java_security(spec, "consumer.override."),
    ]
    return "\n".join(lines) + "\n"


def elastic_input(spec: ClientSpec) -> str:
    """A Filebeat / Elastic Agent ``kafka`` input (one CloudTrail record per ``message``,
    what the ``aws.cloudtrail`` ingest pipeline parses). Strings are JSON-quoted (valid YAML)."""
    q = json.dumps
    lines = [f"# trailpipe SIEM subscription {spec.name}: Filebeat / Elastic Agent kafka input",
             "filebeat.inputs:", "  - type: kafka",
             f"    hosts: {q(spec.bootstrap.split(','))}",
             f"    topics: {q(list(spec.topics))}",
             f"    group_id: {q(spec.group('elastic'))}",
             "    initial_offset: oldest"]
    if spec.auth == "scram":
        lines += [f"    username: {q(spec.name)}", f"    password: {q(spec.secret)}",
                  f"    sasl.mechanism: {SCRAM_MECHANISM}"]
    if spec.tls:
        lines += ["    ssl.enabled: true",
                  f"    ssl.certificate_authorities: {q([spec.path(CA_FILE)])}"]
    if spec.auth == "mtls":
        lines += [f"    ssl.certificate: {q(spec.path(CERT_FILE))}",
                  f"    ssl.key: {q(spec.path(KEY_FILE))}"]
    return "\n".join(lines) + "\n"
