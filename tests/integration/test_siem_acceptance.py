"""Issue 10's acceptance with real, independent clients on the SASL + TLS dev cluster.

Subscribed SIEMs read the JSON mirror with their own tools and credentials, made by
``trailpipe siem subscribe`` (run as a subprocess): kcat (Debian, librdkafka 2.0.2) over mutual
TLS, Kafka's Java console consumer over SCRAM (SASL_SSL), rsyslog's imkafka over mutual TLS.
Module setup: every topic under a name unique to this module, 300 corpus records (distinct
eventIDs) produced with our own encoder, the mirror running as a daemon process, four
subscriptions (each to events and alerts; ``other`` with a view of its own). Then: what each
client is refused (in its own words), rotate and revoke against running clients, the
old-librdkafka SCRAM failure, and ``kafka-acls --list``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from siem_clients import (
    SCRAM_FIX_LIBRDKAFKA,
    Client,
    foreign_certificate,
    kcat_consume,
    kcat_consumer,
    kcat_envelopes,
    kcat_librdkafka_version,
    kcat_metadata,
    kcat_produce,
    read_properties,
    refused_until,
    require,
    until_count_or_error,
    until_error,
    wait_until,
    write_properties,
)
from siem_java import (
    acl_list,
    console_consume,
    console_consumer,
    console_produce,
    wrong_password,
)
from siem_rsyslog import RsyslogKafka
from siem_site import Site, assert_same_records, corpus_records, same

from pipeline.dev import ClusterInfo
from pipeline.events.partition import event_key, partition_for
from pipeline.siem.model import view_topic

pytestmark = pytest.mark.integration

COUNT = 300
LATER = 40
"""Records produced while rsyslog is stopped (the restart test)."""
AUTHZ = {"TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED"}


@dataclass(frozen=True)
class Subs:
    """The module's subscriptions (names) and what ``siem subscribe`` printed for each."""

    kcat: str
    java: str
    rsyslog: str
    other: str
    printed: dict[str, str]

    def names(self) -> list[str]:
        return [self.kcat, self.java, self.rsyslog, self.other]


@pytest.fixture(scope="module")
def site(siem_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(siem_cluster, tmp_path_factory.mktemp("siem-acceptance"), uuid.uuid4().hex[:8])
    s.create_topics()
    s.produce(corpus_records(COUNT))
    s.start_mirror()
    try:
        s.wait_mirrored()
        yield s
    finally:
        s.stop_mirror()


@pytest.fixture(scope="module")
def subs(site: Site) -> Subs:
    u = site.suffix
    names = {"kcat": f"kc-{u}", "java": f"jv-{u}", "rsyslog": f"rs-{u}", "other": f"ov-{u}"}
    printed = {names["kcat"]: site.subscribe(names["kcat"], "mtls"),
               names["java"]: site.subscribe(names["java"], "scram"),
               names["rsyslog"]: site.subscribe(names["rsyslog"], "mtls"),
               names["other"]: site.subscribe(names["other"], "scram", "--account",
                                              "123456789012", "--hash-source-ip")}
    return Subs(**names, printed=printed)


def test_kcat_mtls_reads_every_record_in_its_group(site: Site, subs: Subs) -> None:
    """Also what a SIEM sees around each record: the headers, and the key and partition of the
    source (the mirror keeps the producers' partitioning)."""
    kcat = require("kcat", "kcat")
    expected = dict(site.produced)
    group, topic = f"{subs.kcat}.kcat", site.topics.events_json
    conf = site.secrets(subs.kcat) / "librdkafka.conf"
    run = kcat_consume(kcat, conf, group, topic, expected=len(expected), timeout_s=90)
    assert read_properties(conf)["security.protocol"].upper() == "SSL"
    messages = kcat_envelopes(run)
    records = [json.loads(m["payload"]) for m in messages]
    assert_same_records(records, expected, run)
    partitions = site.topics.partitions
    for message, record in zip(messages, records, strict=True):
        key = event_key(record)
        assert (message["key"], message["partition"]) == (key.decode(),
                                                          partition_for(key, partitions))
        assert message["headers"]["eventID"] == record["eventID"]
        assert message["headers"]["sourcetype"] == "aws:cloudtrail"
    # kcat committed in its own group as it stopped: the SIEM resumes where it left off
    wait_until(lambda: site.group_lag(group, topic) == 0, 30, f"group {group} to commit")


def test_console_consumer_scram_reads_every_record(site: Site, subs: Subs) -> None:
    expected = dict(site.produced)
    props = site.secrets(subs.java) / "client.properties"
    conf = read_properties(props)
    assert (conf["security.protocol"], conf["sasl.mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert "ScramLoginModule" in conf["sasl.jaas.config"]
    run = console_consume(props, site.topics.events_json, expected=len(expected), timeout_s=90)
    assert_same_records([json.loads(line) for line in run.records()], expected, run)


def test_rsyslog_imkafka_mtls_loses_nothing_over_a_restart(site: Site, subs: Subs,
                                                          tmp_path: Path) -> None:
    """rsyslog reads the mirror into a file while records keep coming; it is stopped as soon
    as it has written the newest ones (its commit of them may or may not have happened), more
    arrive while it is down, and once restarted the file has every eventID. Duplicates are
    allowed (imkafka commits by itself, at least once); their count is printed."""
    params = read_properties(site.secrets(subs.rsyslog) / "librdkafka.conf")
    bootstrap = params.pop("bootstrap.servers")
    params.pop("group.id", None)
    params |= {"auto.offset.reset": "earliest", "auto.commit.interval.ms": "200"}
    group, topic = f"{subs.rsyslog}.rsyslog", site.topics.events_json
    rsyslog = RsyslogKafka(tmp_path, topic, bootstrap, group, params)

    def has_all() -> bool:
        assert rsyslog.alive(), rsyslog.log_tail()
        return {json.loads(line)["eventID"] for line in rsyslog.lines()} >= set(site.produced)

    later = corpus_records(COUNT + LATER)[COUNT:]
    try:
        rsyslog.start()
        for batch in (later[: LATER // 2], later[LATER // 2:]):
            wait_until(has_all, 60, "rsyslog to write every record so far")
            rsyslog.stop()  # as soon as it wrote them: its commit may not have happened
            before = len(rsyslog.lines())
            site.produce(batch)
            site.wait_mirrored()
            rsyslog.start()
        wait_until(has_all, 60, "rsyslog, restarted, to write every record")
    finally:
        rsyslog.stop()
    records = [json.loads(line) for line in rsyslog.lines()]  # one whole record per line
    assert {r["eventID"] for r in records} == set(site.produced)
    assert all(same(r, site.produced[r["eventID"]]) for r in records)
    after = records[before:]
    assert len(after) < len(site.produced), "the restarted rsyslog read everything again"
    print(f"rsyslog: {len(records)} lines for {len(site.produced)} records "
          f"({len(records) - len(site.produced)} duplicates), {len(after)} after the last "
          "restart")


def test_old_librdkafka_scram_fails_and_subscribe_names_the_fix(site: Site, subs: Subs) -> None:
    kcat = require("kcat", "kcat")
    version = kcat_librdkafka_version(kcat)
    if version >= SCRAM_FIX_LIBRDKAFKA:
        pytest.skip(f"kcat links librdkafka {version}, which has the SCRAM fix: the old-client "
                    "failure cannot be reproduced here; this check did NOT run")
    scram = read_properties(site.secrets(subs.java) / "librdkafka.conf")
    # the subscription's own settings (SASL_SSL) and the admin's (SASL_PLAINTEXT): both correct
    for settings in (scram, site.cluster.client_config()):
        run = kcat_metadata(kcat, settings)
        assert run.error() == "SASL_AUTHENTICATION_FAILED", run.describe()
        assert "invalid credentials" in run.err, run.describe()
    assert site.allowed(subs.java), "a current librdkafka must accept the same settings"
    printed = subs.printed[subs.java]
    assert "2.6.1" in printed and "--auth mtls" in printed and "Java" in printed, printed
    assert "2.6.1" in (site.secrets(subs.java) / "librdkafka.conf").read_text()


def test_kafka_acls_lists_exactly_three_bindings_per_subscription(site: Site,
                                                                   subs: Subs) -> None:
    listed = acl_list(site.cluster.bootstrap, site.admin_properties())
    for name in subs.names():
        events = view_topic(name) if name == subs.other else site.topics.events_json
        want: set[Any] = {("TOPIC", topic, "LITERAL", "READ", "ALLOW", "*")
                          for topic in (events, site.topics.alerts_json)}
        want.add(("GROUP", f"{name}.", "PREFIXED", "READ", "ALLOW", "*"))
        assert listed.get(f"User:{name}") == want, listed.get(f"User:{name}")
        assert len(want) == 3


KCAT_REFUSALS = {
    "read the raw events topic": "TOPIC_AUTHORIZATION_FAILED",
    "read another SIEM's view": "TOPIC_AUTHORIZATION_FAILED",
    "use a group outside its prefix": "GROUP_AUTHORIZATION_FAILED",
    "produce to its own topic": "TOPIC_AUTHORIZATION_FAILED",
    "produce to the raw events topic": "TOPIC_AUTHORIZATION_FAILED",
    "connect with a certificate of another CA": "SSL_HANDSHAKE_FAILED",
}


@pytest.mark.parametrize("case", list(KCAT_REFUSALS))
def test_kcat_mtls_is_refused(site: Site, subs: Subs, case: str, tmp_path: Path) -> None:
    kcat = require("kcat", "kcat")
    name, t = subs.kcat, site.topics
    conf = site.secrets(name) / "librdkafka.conf"
    group = f"{name}.kcat"
    if case == "read the raw events topic":
        run = kcat_consume(kcat, conf, group, t.events, expected=1)
    elif case == "read another SIEM's view":
        run = kcat_consume(kcat, conf, group, view_topic(subs.other), expected=1)
    elif case == "use a group outside its prefix":
        run = kcat_consume(kcat, conf, f"{subs.other}.kcat", t.events_json, expected=1)
    elif case == "produce to its own topic":
        run = kcat_produce(kcat, conf, t.events_json, b'{"eventID": "forged"}')
    elif case == "produce to the raw events topic":
        run = kcat_produce(kcat, conf, t.events, b"forged")
    else:
        run = kcat_consume(kcat, foreign_certificate(conf, name, tmp_path), group,
                           t.events_json, expected=1)
    assert run.error() == KCAT_REFUSALS[case], run.describe()
    assert run.records() == [], run.describe()


JAVA_REFUSALS = {
    "read the raw events topic": "TOPIC_AUTHORIZATION_FAILED",
    "read another SIEM's view": "TOPIC_AUTHORIZATION_FAILED",
    "use a group outside its prefix": "GROUP_AUTHORIZATION_FAILED",
    "produce to its own topic": "TOPIC_AUTHORIZATION_FAILED",
    "authenticate with a wrong password": "SASL_AUTHENTICATION_FAILED",
}


@pytest.mark.parametrize("case", list(JAVA_REFUSALS))
def test_console_tools_scram_are_refused(site: Site, subs: Subs, case: str,
                                         tmp_path: Path) -> None:
    name, t = subs.java, site.topics
    props = site.secrets(name) / "client.properties"
    if case == "read the raw events topic":
        run = console_consume(props, t.events, expected=1)
    elif case == "read another SIEM's view":
        run = console_consume(props, view_topic(subs.other), expected=1)
    elif case == "use a group outside its prefix":
        other = write_properties(props, tmp_path / "group.properties",
                                 {"group.id": f"{subs.other}.java"})
        run = console_consume(other, t.events_json, expected=1)
    elif case == "produce to its own topic":
        run = console_produce(props, t.events_json, b'{"eventID": "forged"}')
    else:
        run = console_consume(wrong_password(props, tmp_path), t.events_json, expected=1)
    assert run.error() == JAVA_REFUSALS[case], run.describe()
    assert run.records() == [], run.describe()


def test_rotate_and_revoke_cut_off_real_clients(site: Site, tmp_path: Path) -> None:
    """After ``siem rotate`` the old password fails; consumers reading at the end of the mirror
    (kcat over mTLS, the console consumer over SCRAM with the new password) fail on their next
    fetch after ``siem revoke``. ACL and credential changes reach the broker with a delay:
    every check polls for the state."""
    kcat = require("kcat", "kcat")
    mtls, scram = f"rvm-{site.suffix}", f"rvs-{site.suffix}"
    site.subscribe(mtls, "mtls")
    site.subscribe(scram, "scram")
    props = site.secrets(scram) / "client.properties"
    old = write_properties(props, tmp_path / "old.properties", {})
    site.siem("rotate", scram)
    jaas = "sasl.jaas.config"
    assert read_properties(props)[jaas] != read_properties(old)[jaas], "no new password"
    wait_until(lambda: site.allowed(scram), 30, "the new password to work")
    refused_until(lambda: console_consume(old, site.topics.events_json, expected=1),
                  {"SASL_AUTHENTICATION_FAILED"}, "the old password to fail")

    expected, topic = len(site.produced), site.topics.events_json
    readers = [Client(kcat_consumer(kcat, site.secrets(mtls) / "librdkafka.conf",
                                    f"{mtls}.kcat", topic)),
               Client(console_consumer(props, topic, idle_ms=None))]
    try:
        for reader in readers:
            assert reader.wait_for(until_count_or_error(expected), 60), reader.run.describe()
            assert reader.run.error() is None, reader.run.describe()
        site.siem("revoke", mtls)
        site.siem("revoke", scram)
        for reader in readers:
            assert reader.wait_for(until_error, 60), reader.run.describe()
            assert reader.run.error() in AUTHZ, reader.run.describe()
            print(f"after revoke, {Path(reader.run.argv[0]).name} got {reader.run.error()}")
    finally:
        for reader in readers:
            reader.stop()

