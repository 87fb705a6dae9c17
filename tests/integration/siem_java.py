"""Kafka's own Java tools as SIEM clients, run from the dev cluster's jars (no Kafka
install): the console consumer and producer with a subscription's ``client.properties``, and
``AclCommand`` (``kafka-acls``). A JVM starts in seconds: tests keep their number small.
"""

from __future__ import annotations

import re
from pathlib import Path

from siem_clients import (
    Run,
    read_properties,
    require,
    run_until,
    until_count_or_error,
    until_error,
    write_properties,
)

from pipeline.dev import ensure_kafka_libs, find_repo_root

CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"


def kafka_libs() -> Path:
    """The dev cluster's Kafka jars (resolved by Maven once, cached under var/kafka/)."""
    require("java", "openjdk-17-jre-headless")
    return ensure_kafka_libs(find_repo_root())[0]


def java_argv(main_class: str, args: list[str]) -> list[str]:
    return ["java", "-cp", f"{kafka_libs()}/*", main_class, *args]


def console_consumer(props: Path, topic: str, *, max_messages: int | None = None,
                     idle_ms: int | None = 10_000) -> list[str]:
    """Kafka's console consumer with a client ``.properties`` file (bootstrap and group from
    it), read_committed, from the beginning; exits after ``max_messages``, ``idle_ms`` without
    a message, or (printing the exception) on an error."""
    conf = read_properties(props)
    args = ["--bootstrap-server", conf["bootstrap.servers"], "--topic", topic,
            "--command-config", str(props), "--from-beginning",
            "--isolation-level", "read_committed"]
    if max_messages is not None:
        args += ["--max-messages", str(max_messages)]
    if idle_ms is not None:
        args += ["--timeout-ms", str(idle_ms)]
    return java_argv(CONSOLE_CONSUMER, args)


def console_consume(props: Path, topic: str, *, expected: int, timeout_s: float = 60) -> Run:
    """:func:`console_consumer` until ``expected`` messages or a Kafka error (no idle exit: a
    loaded machine can take seconds to join the group)."""
    return run_until(console_consumer(props, topic, max_messages=expected, idle_ms=None),
                     until_count_or_error(expected), timeout_s)


def console_produce(props: Path, topic: str, value: bytes, timeout_s: float = 60) -> Run:
    """Kafka's console producer sending one message synchronously. Idempotence is off so a
    refusal is the topic's (an idempotent producer is refused at the cluster first)."""
    args = ["--bootstrap-server", read_properties(props)["bootstrap.servers"], "--topic", topic,
            "--command-config", str(props), "--command-property", "enable.idempotence=false",
            "--sync"]
    return run_until(java_argv(CONSOLE_PRODUCER, args), until_error, timeout_s,
                     stdin=value + b"\n")


def scram_properties(dest: Path, protocol: str, username: str, password: str,
                     ca_location: Path | None = None) -> Path:
    """A Java client ``.properties`` file (no bootstrap) for SCRAM-SHA-512 as ``username``."""
    lines = [f"security.protocol={protocol}", "sasl.mechanism=SCRAM-SHA-512",
             "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
             f'required username="{username}" password="{password}";']
    if ca_location is not None:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={ca_location}"]
    dest.touch(mode=0o600)
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def wrong_password(props: Path, tmp_path: Path) -> Path:
    """``props`` with its SCRAM password changed (one more character)."""
    jaas = read_properties(props)["sasl.jaas.config"]
    wrong = jaas.replace('password="', 'password="x', 1)
    assert wrong != jaas
    return write_properties(props, tmp_path / "wrong.properties", {"sasl.jaas.config": wrong})


AclRow = tuple[str, str, str, str, str, str]
"""(resource type, resource name, pattern type, operation, permission, host)."""

_ACL_RESOURCE = re.compile(r"resourceType=(\w+), name=(.*?), patternType=(\w+)\)")
_ACL_ENTRY = re.compile(r"\(principal=(.*?), host=(.*?), operation=(\w+), "
                        r"permissionType=(\w+)\)")


def acl_list(bootstrap: str, admin_props: Path, timeout_s: float = 60) -> dict[str, set[AclRow]]:
    """``kafka-acls --list`` (AclCommand) parsed: principal -> its bindings."""
    argv = java_argv(ACL_COMMAND, ["--bootstrap-server", bootstrap, "--command-config",
                                   str(admin_props), "--list"])
    run = run_until(argv, lambda _r: False, timeout_s)
    assert run.returncode == 0, run.describe()
    out: dict[str, set[AclRow]] = {}
    resource: tuple[str, str, str] | None = None
    for line in run.out:
        if (res := _ACL_RESOURCE.search(line)) is not None:
            resource = (res[1], res[2], res[3])
        elif (entry := _ACL_ENTRY.search(line)) is not None:
            assert resource is not None, f"an ACL entry before its resource: {run.out}"
            out.setdefault(entry[1], set()).add((*resource, entry[3], entry[4], entry[2]))
    return out
