"""CEF escaping per the spec and the line an alert becomes."""

from __future__ import annotations

import re

from pipeline.notify.alerts import delivery_key
from pipeline.notify.cef import cef_line, escape_extension, escape_header


def test_header_escapes_backslash_and_pipe_and_flattens_line_breaks() -> None:
    assert escape_header(r"a|b\c") == r"a\|b\\c"
    assert escape_header("x\r\ny\nz") == "x y z"
    assert escape_header("a=b") == "a=b"  # '=' needs no escape in the header


def test_extension_escapes_backslash_equals_and_line_breaks() -> None:
    assert escape_extension(r"a=b\c") == r"a\=b\\c"
    assert escape_extension("l1\nl2\r\nl3\rl4") == r"l1\nl2\nl3\rl4"
    assert escape_extension("a|b") == "a|b"  # '|' needs no escape in extensions


def _parse_extension(text: str) -> dict[str, str]:
    """An independent CEF extension reader: keys are words before an unescaped '='."""
    out: dict[str, str] = {}
    for m in re.finditer(r"(\w+)=((?:\\.|[^\\=])*?)(?= \w+=|$)", text):
        value = re.sub(r"\\(.)", lambda g: {"n": "\n", "r": "\r"}.get(g[1], g[1]), m[2])
        out[m[1]] = value
    return out


def test_an_alert_line_parses_back(make_alert) -> None:
    alert = make_alert(title="Root | login\\x", principal="arn:aws:iam::1:root=x",
                       rule_id="r|1", severity="critical")
    line = cef_line(alert)
    header = re.split(r"(?<!\\)\|", line, maxsplit=7)
    assert header[:3] == ["CEF:0", "trailpipe", "trailpipe"]
    assert header[4] == r"r\|1" and header[5] == r"Root \| login\\x" and header[6] == "10"
    ext = _parse_extension(header[7])
    assert ext["externalId"] == delivery_key(alert)
    assert ext["suser"] == "arn:aws:iam::1:root=x"
    assert ext["cs1"] == alert["alert_id"] and ext["cn1"] == "0"
    assert ext["src"] == "198.51.100.7" and ext["cnt"] == "1"
    assert ext["cs5Label"] == "account" and ext["cs5"] == "111122223333"


def test_a_source_that_is_not_an_ip_is_a_host(make_alert) -> None:
    line = cef_line(make_alert(source_ip="ec2.amazonaws.com", account="", region=""))
    assert "shost=ec2.amazonaws.com" in line and " src=" not in line
    assert "cs5" not in line and "cs6" not in line
