"""Client configs of a subscription: the right protocol, mechanism, CA and credential paths in
each tool's format; and nothing ``siem subscribe`` prints contains a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.siem import _print_subscribed
from pipeline.siem.clients import (
    ELASTIC_FILE,
    JAVA_FILE,
    LIBRDKAFKA_FILE,
    SPLUNK_FILE,
    ClientSpec,
    elastic_input,
    java_properties,
    librdkafka_conf,
    render_all,
)
from pipeline.siem.model import Subscription
from pipeline.siem.plan import acl_bindings
from pipeline.siem.service import Outcome

PASSWORD = "pw-Zq9-secret"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\nAbCd\n-----END PRIVATE KEY-----\n"
CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
DIR = Path("/srv/siem/splunk")


def _scram() -> ClientSpec:
    return ClientSpec("splunk", "scram", "SASL_SSL", "h:9094", ("ev.json", "al.json"), DIR,
                      PASSWORD)


def _mtls() -> ClientSpec:
    return ClientSpec("splunk", "mtls", "SSL", "h:9095", ("ev.json",), DIR, KEY_PEM, CERT_PEM)


def _props(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_librdkafka_scram() -> None:
    conf = _props(librdkafka_conf(_scram()))
    assert conf == {"bootstrap.servers": "h:9094", "security.protocol": "SASL_SSL",
                    "group.id": "splunk.kcat", "ssl.ca.location": "/srv/siem/splunk/ca.pem",
                    "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "splunk",
                    "sasl.password": PASSWORD}
    assert "librdkafka >= 2.6.1" in librdkafka_conf(_scram())


def test_librdkafka_mtls_points_at_the_key_files_and_never_inlines_them() -> None:
    text = librdkafka_conf(_mtls())
    assert _props(text) == {"bootstrap.servers": "h:9095", "security.protocol": "SSL",
                            "group.id": "splunk.kcat", "ssl.ca.location": f"{DIR}/ca.pem",
                            "ssl.certificate.location": f"{DIR}/client.pem",
                            "ssl.key.location": f"{DIR}/client.key"}
    assert "PRIVATE KEY" not in text


def test_sasl_plaintext_has_no_ssl_settings() -> None:
    spec = ClientSpec("g", "scram", "SASL_PLAINTEXT", "h:9092", ("t",), DIR, PASSWORD)
    for text in render_all(spec).values():
        assert "ssl." not in text and "ca.pem" not in text


def test_java_scram_uses_the_scram_login_module_and_a_pem_truststore() -> None:
    props = _props(java_properties(_scram()))
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["sasl.jaas.config"] == ("org.apache.kafka.common.security.scram."
                                         "ScramLoginModule required username=\"splunk\" "
                                         f"password=\"{PASSWORD}\";")
    assert (props["ssl.truststore.type"], props["ssl.truststore.location"]) == (
        "PEM", f"{DIR}/ca.pem")
    assert props["group.id"].startswith("splunk.")
    assert props["isolation.level"] == "read_committed"  # the mirror writes in transactions


def test_java_mtls_inlines_the_pem_key_store_as_one_escaped_line() -> None:
    props = _props(java_properties(_mtls()))
    assert props["security.protocol"] == "SSL" and props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.key"].replace("\\n", "\n") == KEY_PEM.strip()
    assert props["ssl.keystore.certificate.chain"].replace("\\n", "\n") == CERT_PEM.strip()
    assert "sasl.jaas.config" not in props


def test_splunk_connector_consumes_as_the_subscriber_in_its_group() -> None:
    props = _props(render_all(_scram())[SPLUNK_FILE])
    assert props["topics"] == "ev.json,al.json"
    assert props["splunk.sourcetypes"] == "aws:cloudtrail"
    assert props["consumer.override.group.id"] == "splunk.splunk"
    assert props["consumer.override.isolation.level"] == "read_committed"
    assert props["consumer.override.sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["consumer.override.ssl.truststore.location"] == f"{DIR}/ca.pem"


def test_elastic_input_is_yaml_with_json_quoted_values() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML parses the Filebeat input")
    doc = yaml.safe_load(elastic_input(_mtls()))["filebeat.inputs"][0]
    assert doc["type"] == "kafka" and doc["hosts"] == ["h:9095"]
    assert doc["topics"] == ["ev.json"] and doc["group_id"] == "splunk.elastic"
    assert doc["ssl.certificate_authorities"] == [f"{DIR}/ca.pem"]
    assert (doc["ssl.certificate"], doc["ssl.key"]) == (f"{DIR}/client.pem", f"{DIR}/client.key")
    scram = yaml.safe_load(elastic_input(_scram()))["filebeat.inputs"][0]
    assert (scram["username"], scram["password"], scram["sasl.mechanism"]) == (
        "splunk", PASSWORD, "SCRAM-SHA-512")


@pytest.mark.parametrize("spec", [_scram(), _mtls()], ids=["scram", "mtls"])
def test_subscribe_output_names_the_files_and_no_secret(
        spec: ClientSpec, capsys: pytest.CaptureFixture[str]) -> None:
    sub = Subscription(name=spec.name, topics=list(spec.topics), auth=spec.auth, created_ms=1)
    files = [DIR / f for f in ("ca.pem", LIBRDKAFKA_FILE, JAVA_FILE, SPLUNK_FILE, ELASTIC_FILE)]
    _print_subscribed(Outcome(spec.name, sub, files, acl_bindings(spec.name, sub.topics),
                              new_credential=True, bootstrap=spec.bootstrap))
    out = capsys.readouterr()
    printed = out.out + out.err
    for secret in (PASSWORD, "MIIEvQ", "AbCd"):
        assert secret not in printed
    assert all(str(f) in printed for f in files)
    assert f"kcat -F {DIR / LIBRDKAFKA_FILE} -G splunk.kcat" in printed
    assert f"--bootstrap-server {spec.bootstrap} --command-config {DIR / JAVA_FILE}" in printed
    assert ("librdkafka >= 2.6.1" in printed) == (spec.auth == "scram")
    assert spec.topics[0] in printed
