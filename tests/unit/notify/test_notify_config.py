"""Route config is validated once at the edge, every problem listed with its path."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.notify.config import KafkaRoute, SyslogRoute, WebhookRoute

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _load(tmp_path: Path, toml: str):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    return load_config(path, env={})


def test_a_good_route_table_loads_with_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, f"""
[[notifier.routes]]
name = "soc"
type = "webhook"
url = "https://example.test/hook"
secret = "{SECRET}"
match = {{ min_severity = "high", tags = ["attack.t1078"] }}

[[notifier.routes]]
name = "siem"
type = "syslog"
host = "127.0.0.1"
port = 6514
protocol = "tls"
ca_file = "/etc/ca.pem"

[[notifier.routes]]
name = "copy"
type = "kafka"
topic = "audit.alerts.copy"
match = {{ kinds = ["opening", "update"] }}
""")
    soc, siem, copy = cfg.notifier.routes
    assert isinstance(soc, WebhookRoute) and soc.match.min_severity == "high"
    assert soc.match.kinds == ["opening"] and soc.signing == "standard"
    assert isinstance(siem, SyslogRoute) and siem.format == "cef"
    assert isinstance(copy, KafkaRoute) and copy.match.kinds == ["opening", "update"]
    assert SECRET not in str(cfg.masked())


def test_every_problem_of_bad_routes_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, """
[[notifier.routes]]
name = "a"
type = "webhook"
url = "ftp://nope"
secret = "not-whsec"

[[notifier.routes]]
name = "a"
type = "pager"

[[notifier.routes]]
name = "s"
type = "syslog"
host = "127.0.0.1"
port = 70000
protocol = "udp"
ca_file = "/ca.pem"
retry = { budget_ms = 999999999 }
match = { min_severity = "urgent", kinds = [] }
""")
    text = "\n".join(info.value.errors)
    assert "notifier.routes.0.webhook.url" in text
    assert "whsec_" in text
    assert "notifier.routes.1" in text and "pager" in text
    assert "notifier.routes.2.syslog.port" in text
    assert "notifier.routes.2.syslog.retry.budget_ms" in text
    assert "notifier.routes.2.syslog.match.min_severity" in text
    assert "notifier.routes.2.syslog.match.kinds" in text
    assert len(info.value.errors) >= 7


def test_route_names_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="route names must be unique: dup"):
        _load(tmp_path, """
[[notifier.routes]]
name = "dup"
type = "kafka"
topic = "x"

[[notifier.routes]]
name = "dup"
type = "kafka"
topic = "y"
""")


@pytest.mark.parametrize(("toml", "message"), [
    ('signing = "standard"', "needs a secret"),
    ('signing = "github"', "needs a secret"),
    ('secret = "whsec_' + base64.b64encode(b"k" * 16).decode() + '"', "24 to 64 bytes"),
    ('secret = "whsec_***"', "not base64"),
])
def test_webhook_secrets_are_checked(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, f"""
[[notifier.routes]]
name = "w"
type = "webhook"
url = "http://127.0.0.1:1/"
{toml}
""")
