"""An Alert datum as the notifier sees it: built by the alerter's codec and decoded back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.rules.alert import alert_id, alert_record, decode_alert, encode_alert
from pipeline.rules.model import AlertDraft


def build_alert(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "rule_id": "root-login-no-mfa", "key": "111122223333|root",
        "window_start_ms": 1_700_000_000_000,
        "update": 0, "kind": "rule", "count": 1, "first_seen_ms": 1_700_000_000_000,
        "last_seen_ms": 1_700_000_000_000, "sample_event_ids": ("e-1",),
        "title": "Root console login without MFA", "severity": "high",
        "account": "111122223333", "region": "us-east-1", "principal": "root",
        "source_ip": "198.51.100.7"}
    tags = changes.pop("tags", ("attack.initial_access",))
    fields |= changes
    draft = AlertDraft(alert_id=alert_id(fields["rule_id"], fields["key"],
                                         fields["window_start_ms"]), **fields)
    record = alert_record(draft, tags=tuple(tags), rule_source="native:root_login@1",
                          created_ms=1_700_000_000_123)
    return decode_alert(encode_alert(record))


@pytest.fixture
def make_alert() -> Callable[..., dict[str, Any]]:
    return build_alert
