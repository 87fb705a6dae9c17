"""Which routes take an alert."""

from __future__ import annotations

import orjson

from pipeline.notify.alerts import alert_json, delivery_key, matches, slack_body
from pipeline.notify.config import Match


def test_severity_minimum(make_alert) -> None:
    assert matches(Match(min_severity="high"), make_alert(severity="high"))
    assert matches(Match(min_severity="high"), make_alert(severity="critical"))
    assert not matches(Match(min_severity="high"), make_alert(severity="medium"))


def test_tags_any_of_and_accounts(make_alert) -> None:
    alert = make_alert(tags=("attack.t1078", "cloudtrail"))
    assert matches(Match(tags=["nope", "cloudtrail"]), alert)
    assert not matches(Match(tags=["nope"]), alert)
    assert matches(Match(accounts=["111122223333"]), alert)
    assert not matches(Match(accounts=["999999999999"]), alert)
    assert not matches(Match(accounts=["111122223333"]), make_alert(account=""))


def test_openings_only_by_default(make_alert) -> None:
    assert matches(Match(), make_alert(update=0))
    assert not matches(Match(), make_alert(update=2))
    assert matches(Match(kinds=["update"]), make_alert(update=2))
    assert not matches(Match(kinds=["update"]), make_alert(update=0))


def test_json_and_slack_bodies(make_alert) -> None:
    alert = make_alert(update=1, title="<b>&")
    doc = orjson.loads(alert_json(alert))
    assert doc["delivery_key"] == delivery_key(alert) == f"{alert['alert_id']}-1"
    assert doc["title"] == "<b>&" and doc["tags"] == ["attack.initial_access"]
    text = orjson.loads(slack_body(alert))["text"]
    assert "&lt;b&gt;&amp;" in text and "<b>" not in text and "(update)" in text
