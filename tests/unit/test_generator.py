"""Synthetic CloudTrail generator: determinism, record shape, traffic mix, attack scenarios."""

from __future__ import annotations

import collections
import ipaddress
import itertools
import json
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from producers.generator.base import REGIONS
from producers.generator.engine import SCENARIOS, Generator
from producers.generator.scenarios import MARKER, scenario_of

START_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
DOC_NETS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24",
                                                   "203.0.113.0/24"))
SOURCES = {f"{s}.amazonaws.com" for s in ("s3", "ec2", "iam", "sts", "kms", "cloudtrail",
                                          "lambda", "dynamodb", "signin")}
IDENTITY_TYPES = {"IAMUser", "AssumedRole", "Root", "AWSService", "FederatedUser"}
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "eventVersion": str, "userIdentity": dict, "eventTime": str, "eventSource": str,
    "eventName": str, "awsRegion": str, "sourceIPAddress": str, "userAgent": str,
    "requestParameters": (dict, type(None)), "responseElements": (dict, type(None)),
    "eventID": str, "readOnly": bool, "eventType": str, "managementEvent": bool,
    "recipientAccountId": str, "eventCategory": str,
}
SIZES = {"logging-tampering": 3, "root-login-no-mfa": 2, "access-denied-burst": 25,
         "iam-privesc": 6, "public-bucket-policy": 3, "kms-key-deletion": 2,
         "sg-open-world": 2, "console-brute-force": 7}


@cache
def benign(seed: int = 11, n: int = 10_000) -> tuple[dict[str, Any], ...]:
    return tuple(Generator(seed, start_ms=START_MS).records(n))


@cache
def attacked(seed: int = 5, n: int = 3_000) -> tuple[dict[str, Any], ...]:
    return tuple(Generator(seed, start_ms=START_MS, scenarios=SCENARIOS).records(n))


def injected(name: str, records: tuple[dict[str, Any], ...] | None = None) -> list[dict]:
    return [r for r in (records or attacked()) if scenario_of(r) == name]


def epoch_s(rec: dict[str, Any]) -> float:
    return datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC).timestamp()


# --- determinism ---------------------------------------------------------------------------

def test_same_seed_same_records_different_seed_different() -> None:
    a = list(Generator(42, start_ms=START_MS, scenarios=SCENARIOS).records(1_500))
    gen = Generator(42, start_ms=START_MS, scenarios=SCENARIOS)
    assert list(gen.records(1_500)) == a
    assert list(gen.records(1_500)) == a  # records() restarts the same sequence
    b = list(Generator(43, start_ms=START_MS, scenarios=SCENARIOS).records(1_500))
    assert [r["eventID"] for r in a] != [r["eventID"] for r in b]
    assert Generator(42, start_ms=0).account_ids != Generator(43, start_ms=0).account_ids


def test_records_are_plain_json_and_unshared() -> None:
    recs = attacked()
    assert [json.loads(json.dumps(r)) for r in recs] == list(recs)
    idents = {id(r["userIdentity"]) for r in recs}
    assert len(idents) == len(recs)


# --- shape ---------------------------------------------------------------------------------

def check_identity(ident: dict[str, Any], rec: dict[str, Any]) -> None:
    if rec["eventType"] == "AwsServiceEvent":
        assert ident == {"accountId": rec["recipientAccountId"], "invokedBy": "AWS Internal"}
        return
    kind = ident["type"]
    assert kind in IDENTITY_TYPES
    if kind == "AWSService":
        assert ident["invokedBy"] == rec["sourceIPAddress"] == rec["userAgent"]
        return
    assert ident["accountId"] == rec["recipientAccountId"]
    assert ident["arn"].startswith(("arn:aws:iam::", "arn:aws:sts::"))
    if kind == "IAMUser":
        assert ident["arn"].endswith(f":user/{ident['userName']}")
    if kind in ("AssumedRole", "FederatedUser"):
        issuer = ident["sessionContext"]["sessionIssuer"]
        assert issuer["type"] == ("Role" if kind == "AssumedRole" else "IAMUser")
        assert ident["sessionContext"]["attributes"]["creationDate"] <= rec["eventTime"]
    if kind == "Root":
        assert ident["arn"] == f"arn:aws:iam::{rec['recipientAccountId']}:root"


def check_record(rec: dict[str, Any], accounts: tuple[str, ...]) -> None:
    for field, typ in REQUIRED.items():
        assert isinstance(rec[field], typ), (field, rec)
    assert rec["eventVersion"] in ("1.08", "1.09")
    assert rec["eventSource"].endswith(".amazonaws.com")
    assert rec["awsRegion"] in REGIONS
    assert rec["recipientAccountId"] in accounts
    assert uuid.UUID(rec["eventID"]).version == 4
    assert rec["eventType"] in ("AwsApiCall", "AwsConsoleSignIn", "AwsServiceEvent")
    assert rec["managementEvent"] == (rec["eventCategory"] == "Management")
    assert rec["eventCategory"] in ("Management", "Data")
    if "errorCode" in rec:
        assert rec["errorMessage"] and rec["responseElements"] is None
    ip = rec["sourceIPAddress"]
    if ip[0].isdigit():
        assert any(ipaddress.ip_address(ip) in net for net in DOC_NETS), ip
    else:
        assert ip == "AWS Internal" or ip.endswith(".amazonaws.com")
    if "tlsDetails" in rec:
        assert set(rec["tlsDetails"]) == {"tlsVersion", "cipherSuite", "clientProvidedHostHeader"}
    check_identity(rec["userIdentity"], rec)


def test_every_record_has_the_cloudtrail_shape() -> None:
    for seed, recs in ((5, attacked()), (11, benign()[:3_000])):
        gen = Generator(seed, start_ms=START_MS)
        assert all(len(a) == 12 and a.isdigit() for a in gen.account_ids)
        assert len(set(gen.account_ids)) == 3
        assert gen.region_names[0] == "us-east-1" and set(gen.region_names) <= set(REGIONS)
        for rec in recs:
            check_record(rec, gen.account_ids)


def test_event_time_starts_at_start_ms_and_advances_at_the_configured_pace() -> None:
    recs = benign()
    times = [epoch_s(r) for r in recs]
    assert times[0] == START_MS // 1000
    assert all(a <= b for a, b in itertools.pairwise(times))
    assert 0.9 * 500 <= times[-1] - times[0] <= 1.1 * 500  # 10k records at 20/s
    assert all(a <= b for a, b in itertools.pairwise(epoch_s(r) for r in attacked()))


def test_catalogue_and_identity_coverage() -> None:
    recs = benign()
    assert {r["eventSource"] for r in recs} == SOURCES
    assert {r["userIdentity"].get("type") for r in recs} >= IDENTITY_TYPES
    assert {r["eventType"] for r in recs} == {"AwsApiCall", "AwsConsoleSignIn", "AwsServiceEvent"}
    assert {r["eventCategory"] for r in recs} == {"Management", "Data"}
    assert len({r["recipientAccountId"] for r in recs}) == 3
    assert len({r["awsRegion"] for r in recs}) == 2


def test_read_write_mix_and_error_rate() -> None:
    recs = benign()
    reads = sum(r["readOnly"] for r in recs) / len(recs)
    assert 0.77 <= reads <= 0.83
    errors = sum("errorCode" in r or "errorMessage" in r for r in recs) / len(recs)
    assert 0.014 <= errors <= 0.026
    codes = collections.Counter(r["errorCode"] for r in recs if "errorCode" in r)
    assert codes.most_common(1)[0][0] in ("AccessDenied", "AccessDeniedException")
    assert not any("errorCode" in r for r in Generator(1, start_ms=0, error_rate=0).records(2000))
    half = list(Generator(1, start_ms=0, error_rate=0.5).records(2000))
    assert 0.4 <= sum("errorMessage" in r for r in half) / 2000 <= 0.6


def test_benign_traffic_never_matches_the_scenario_signatures() -> None:
    recs = benign()
    names = {r["eventName"] for r in recs}
    assert not names & {"StopLogging", "DeleteTrail", "PutEventSelectors", "ScheduleKeyDeletion",
                        "AuthorizeSecurityGroupIngress", "PutBucketPolicy", "PutBucketAcl",
                        "CreateUser", "AttachUserPolicy", "CreateLoginProfile", "CreateAccessKey"}
    logins = [r for r in recs if r["eventName"] == "ConsoleLogin"]
    assert logins and all(r["additionalEventData"]["MFAUsed"] == "Yes" for r in logins)
    assert not any(r["sourceIPAddress"].startswith("203.0.113.") for r in recs)
    assert not any(scenario_of(r) for r in recs)


# --- scenarios -----------------------------------------------------------------------------

def test_scenario_names_and_validation() -> None:
    assert tuple(SIZES) == SCENARIOS
    with pytest.raises(ValueError, match="logging-tampering"):
        Generator(1, start_ms=0, scenarios=["nope"])
    with pytest.raises(ValueError, match="count"):
        Generator(1, start_ms=0, scenarios=SCENARIOS).records(50)
    for bad in ({"accounts": 0}, {"regions": 0}, {"regions": 99}, {"error_rate": 1.5}):
        with pytest.raises(ValueError):
            Generator(1, start_ms=0, **bad)


def test_each_scenario_is_injected_once_whole_and_interleaved() -> None:
    recs = attacked()
    counts = collections.Counter(scenario_of(r) for r in recs)
    del counts[None]
    assert counts == SIZES
    positions = {n: [i for i, r in enumerate(recs) if scenario_of(r) == n] for n in SCENARIOS}
    spans = sorted((p[0], p[-1]) for p in positions.values())
    assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert any(p[-1] - p[0] + 1 > len(p) for p in positions.values())  # benign in between
    for name in SCENARIOS:
        recs_n = injected(name)
        assert epoch_s(recs_n[-1]) - epoch_s(recs_n[0]) <= 60
        assert all(r["additionalEventData"][MARKER] == name for r in recs_n)


def test_scenarios_repeat_per_block() -> None:
    gen = Generator(3, start_ms=0, scenarios=["kms-key-deletion"], scenario_every=1_000)
    assert sum(scenario_of(r) is not None for r in gen.records(2_500)) == 6
    stream = itertools.islice(gen.records(), 2_000)
    assert sum(scenario_of(r) is not None for r in stream) == 4


def test_logging_tampering() -> None:
    recs = injected("logging-tampering")
    assert [r["eventName"] for r in recs] == ["PutEventSelectors", "StopLogging", "DeleteTrail"]
    assert all(r["eventSource"] == "cloudtrail.amazonaws.com" and not r["readOnly"]
               and "errorCode" not in r for r in recs)
    trail = recs[1]["requestParameters"]["name"]
    assert trail.startswith("arn:aws:cloudtrail:") and recs[2]["requestParameters"]["name"] == trail
    selectors = recs[0]["requestParameters"]["eventSelectors"]
    assert selectors[0]["includeManagementEvents"] is False


def test_root_login_without_mfa() -> None:
    login, *rest = injected("root-login-no-mfa")
    assert login["eventName"] == "ConsoleLogin"
    assert login["eventSource"] == "signin.amazonaws.com"
    assert login["eventType"] == "AwsConsoleSignIn"
    assert login["userIdentity"]["type"] == "Root"
    assert login["additionalEventData"]["MFAUsed"] == "No"
    assert login["responseElements"] == {"ConsoleLogin": "Success"}
    assert "errorCode" not in login
    assert all(r["userIdentity"]["type"] == "Root" for r in rest)


def test_access_denied_burst() -> None:
    recs = injected("access-denied-burst")
    assert len(recs) >= 20
    assert {r["errorCode"] for r in recs} == {"AccessDenied"}
    assert len({r["userIdentity"]["arn"] for r in recs}) == 1
    assert recs[0]["userIdentity"]["type"] == "IAMUser"
    assert all("is not authorized to perform" in r["errorMessage"] for r in recs)
    assert epoch_s(recs[-1]) - epoch_s(recs[0]) <= 60


def test_access_denied_burst_fits_a_minute_even_at_a_slow_pace() -> None:
    gen = Generator(9, start_ms=0, scenarios=["access-denied-burst"], events_per_second=0.01)
    recs = injected("access-denied-burst", tuple(gen.records(500)))
    assert len(recs) == 25 and epoch_s(recs[-1]) - epoch_s(recs[0]) <= 60


def test_iam_privilege_escalation_chain() -> None:
    recs = injected("iam-privesc")
    assert [(r["eventSource"].split(".")[0], r["eventName"]) for r in recs] == [
        ("iam", "CreateUser"), ("iam", "CreateAccessKey"), ("iam", "AttachUserPolicy"),
        ("iam", "CreateLoginProfile"), ("lambda", "CreateFunction20150331"), ("lambda", "Invoke")]
    new_user = recs[0]["requestParameters"]["userName"]
    assert all(r["requestParameters"]["userName"] == new_user for r in recs[1:4])
    assert recs[1]["responseElements"]["accessKey"]["userName"] == new_user
    assert new_user not in recs[1]["userIdentity"]["arn"]  # keys created for another user
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert recs[2]["requestParameters"]["policyArn"] == admin
    role = recs[4]["requestParameters"]["role"]
    assert role.startswith("arn:aws:iam::") and ":role/" in role  # the iam:PassRole
    fn = recs[4]["requestParameters"]["functionName"]
    assert recs[5]["requestParameters"]["functionName"].endswith(f":function:{fn}")
    assert len({r["userIdentity"]["arn"] for r in recs}) == 1


def test_public_bucket_policy() -> None:
    recs = {r["eventName"]: r for r in injected("public-bucket-policy")}
    policy = recs["PutBucketPolicy"]["requestParameters"]["bucketPolicy"]
    assert recs["PutBucketPolicy"]["eventSource"] == "s3.amazonaws.com"
    assert any(s["Principal"] == "*" and s["Effect"] == "Allow" for s in policy["Statement"])
    acl = recs["PutBucketAcl"]["requestParameters"]["AccessControlPolicy"]
    uris = [g["Grantee"].get("URI") for g in acl["AccessControlList"]["Grant"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in uris
    assert "DeleteBucketPublicAccessBlock" in recs


def test_kms_key_deletion() -> None:
    disable, schedule = injected("kms-key-deletion")
    assert (disable["eventName"], schedule["eventName"]) == ("DisableKey", "ScheduleKeyDeletion")
    assert schedule["eventSource"] == "kms.amazonaws.com"
    assert schedule["requestParameters"]["pendingWindowInDays"] == 7
    assert schedule["responseElements"]["keyState"] == "PendingDeletion"
    assert schedule["resources"][0]["type"] == "AWS::KMS::Key"


def test_security_group_opened_to_the_world() -> None:
    recs = injected("sg-open-world")
    for r in recs:
        assert (r["eventSource"], r["eventName"]) == ("ec2.amazonaws.com",
                                                      "AuthorizeSecurityGroupIngress")
        perms = r["requestParameters"]["ipPermissions"]["items"]
        assert [x["cidrIp"] for p in perms for x in p["ipRanges"]["items"]] == ["0.0.0.0/0"]
    assert {r["requestParameters"]["ipPermissions"]["items"][0]["fromPort"] for r in recs} == {
        22, 3389}
