"""RFC 5424 message layout and RFC 6587 octet counting."""

from __future__ import annotations

import re

from pipeline.notify.syslog import octet_frame, rfc5424, sd_value

LINE = re.compile(rb'^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*?(?<!\\)\]) (.*)$', re.S)


def test_message_fields(make_alert) -> None:
    alert = make_alert(severity="high", update=0)
    msg = rfc5424(alert, facility=13, app_name="trailpipe", hostname="host a",
                  procid="42", msg="CEF:0|x")
    m = LINE.match(msg)
    assert m is not None
    assert int(m[1]) == 13 * 8 + 3  # log audit, err
    assert m[2] == b"2023-11-14T22:13:20.123Z"
    assert m[3] == b"hosta" and m[4] == b"trailpipe" and m[5] == b"42" and m[6] == b"ALERT"
    assert f'key="{alert["alert_id"]}-0"'.encode() in m[7]
    assert m[8] == b"CEF:0|x"


def test_an_update_has_its_own_msgid_and_key(make_alert) -> None:
    msg = rfc5424(make_alert(update=3, severity="info"), facility=1, app_name="a",
                  hostname="", procid="1", msg="m")
    m = LINE.match(msg)
    assert m is not None and m[1] == b"14" and m[3] == b"-" and m[6] == b"ALERT_UPDATE"
    assert b'update="3"' in m[7]


def test_sd_values_escape_quote_backslash_bracket() -> None:
    assert sd_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'


def test_octet_counting_counts_bytes_not_characters() -> None:
    message = "é\nx".encode()
    framed = octet_frame(message)
    assert framed == b"4 " + message
    stream = octet_frame(b"one") + octet_frame("two é".encode())
    out, rest = [], stream
    while rest:
        size, _, rest = rest.partition(b" ")
        out.append(rest[:int(size)])
        rest = rest[int(size):]
    assert out == [b"one", "two é".encode()]
