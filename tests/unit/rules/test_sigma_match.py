"""The compiled Sigma matcher: modifiers, wildcards, conditions, field paths and value types."""

from __future__ import annotations

from typing import Any

import pytest
from sigma.rule import SigmaRule

from pipeline.rules.model import RuleError
from pipeline.rules.sigma.loader import CompiledSigmaRule, compile_rule


def rule(detection: dict[str, Any]) -> CompiledSigmaRule:
    return compile_rule(SigmaRule.from_dict({
        "title": "test rule", "id": "5b0f1f5e-0d8a-4a4e-9a51-2f3c1a9b7e01",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": detection, "level": "high",
    }), "test.yml")


def one(field: str, value: Any) -> CompiledSigmaRule:
    return rule({"sel": {field: value}, "condition": "sel"})


# --- strings, case and wildcards ------------------------------------------------------------

def test_plain_value_is_case_insensitive() -> None:
    r = one("eventName", "CreateUser")
    assert r.matches({"eventName": "createUSER"})
    assert not r.matches({"eventName": "CreateUsers"})


def test_case_folding_is_full_unicode_not_lower() -> None:
    # "ß".lower() stays "ß" but casefolds to "ss"; "ﬁ" (ligature) casefolds to "fi".
    assert one("userAgent", "STRASSE").matches({"userAgent": "straße"})
    assert one("userAgent|contains", "fi").matches({"userAgent": "ﬁle"})


def test_cased_is_exact() -> None:
    r = one("eventName|cased", "CreateUser")
    assert r.matches({"eventName": "CreateUser"})
    assert not r.matches({"eventName": "createuser"})
    assert one("eventName|cased|startswith", "Create").matches({"eventName": "CreateUser"})
    assert not one("eventName|cased|startswith", "create").matches({"eventName": "CreateUser"})


def test_contains_startswith_endswith() -> None:
    event = {"userAgent": "aws-cli/2.13 Python/3.11"}
    assert one("userAgent|contains", "PYTHON").matches(event)
    assert one("userAgent|startswith", "AWS-CLI").matches(event)
    assert one("userAgent|endswith", "/3.11").matches(event)
    assert not one("userAgent|startswith", "python").matches(event)
    assert not one("userAgent|endswith", "aws").matches(event)


def test_all_needs_every_value() -> None:
    r = one("userAgent|contains|all", ["aws", "python"])
    assert r.matches({"userAgent": "aws-cli Python/3"})
    assert not r.matches({"userAgent": "aws-cli Ruby/3"})
    assert one("userAgent|contains", ["aws", "python"]).matches({"userAgent": "aws Ruby"})


def test_wildcards_and_escapes() -> None:
    assert one("eventName", "Delete*Policy").matches({"eventName": "DeleteUserPolicy"})
    assert one("eventName", "Get?bject").matches({"eventName": "GetObject"})
    assert not one("eventName", "Get?bject").matches({"eventName": "GetOObject"})
    literal_star = one("userAgent", r"a\*b")
    assert literal_star.matches({"userAgent": "A*B"})
    assert not literal_star.matches({"userAgent": "axxb"})
    assert one("userAgent", r"what\?").matches({"userAgent": "what?"})
    assert not one("userAgent", r"what\?").matches({"userAgent": "whatx"})
    assert one("userAgent", "*").matches({"userAgent": ""})
    assert not one("userAgent", "*").matches({})


def test_regex_is_case_sensitive_unless_i_and_honours_m_s() -> None:
    assert one("userIdentity.arn|re", ":assumed-role/").matches(
        {"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/x"}})
    assert not one("userAgent|re", "^boto").matches({"userAgent": "Boto3"})
    assert one("userAgent|re|i", "^boto").matches({"userAgent": "Boto3"})
    assert not one("userAgent|re", "^b$").matches({"userAgent": "a\nb"})
    assert one("userAgent|re|m", "^b$").matches({"userAgent": "a\nb"})
    assert not one("userAgent|re", "a.b").matches({"userAgent": "a\nb"})
    assert one("userAgent|re|s", "a.b").matches({"userAgent": "a\nb"})


@pytest.mark.parametrize(("pattern", "matching", "failing"), [
    (".+:assumed-role/aws:.+", ["a:assumed-role/aws:b"], [":assumed-role/aws:b", "a:assumed"]),
    ("^arn:aws$", ["arn:aws"], ["arn:aws:x", "xarn:aws"]),
    ("key/.*", ["key/"], ["kex/"]),
    (r"a\.b", ["a.b"], ["axb"]),
    ("(?i)ROOT", ["root"], ["rot"]),
])
def test_regex_literal_prefilter_keeps_the_meaning(
        pattern: str, matching: list[str], failing: list[str]) -> None:
    r = one("userAgent|re", pattern)
    assert all(r.matches({"userAgent": v}) for v in matching)
    assert not any(r.matches({"userAgent": v}) for v in failing)


def test_base64_and_windash_expand_to_plain_matches() -> None:
    assert one("userAgent|base64", "hello").matches({"userAgent": "aGVsbG8="})
    offset = one("userAgent|base64offset|contains", "hello")
    assert offset.matches({"userAgent": "xx" + "IGhlbGxv" + "yy"})  # " hello" shifted by one
    assert one("userAgent|windash|contains", " -enc").matches({"userAgent": "x /enc y"})


# --- other value types -------------------------------------------------------------------------

def test_cidr_v4_v6_and_non_addresses() -> None:
    r = one("sourceIPAddress|cidr", ["10.0.0.0/8", "2001:db8::/32"])
    assert r.matches({"sourceIPAddress": "10.1.2.3"})
    assert r.matches({"sourceIPAddress": "2001:db8::1"})
    assert not r.matches({"sourceIPAddress": "11.0.0.1"})
    assert not r.matches({"sourceIPAddress": "AWS Internal"})


def test_exists() -> None:
    present = one("errorCode|exists", True)
    absent = one("errorCode|exists", False)
    assert present.matches({"errorCode": "AccessDenied"})
    assert not present.matches({"errorCode": None})
    assert absent.matches({})
    assert not absent.matches({"errorCode": ""})


def test_null_matches_missing_or_null_only() -> None:
    r = one("errorCode", None)
    assert r.matches({})
    assert r.matches({"errorCode": None})
    assert not r.matches({"errorCode": ""})
    assert one("userIdentity.sessionContext.attributes.mfaAuthenticated", None).matches(
        {"userIdentity": {"type": "Root"}})


def test_fieldref_compares_two_fields_case_insensitively() -> None:
    r = one("userIdentity.userName|fieldref", "requestParameters.userName")
    assert r.matches({"userIdentity": {"userName": "Alice"},
                      "requestParameters": {"userName": "alice"}})
    assert not r.matches({"userIdentity": {"userName": "Alice"},
                          "requestParameters": {"userName": "bob"}})
    assert not r.matches({"userIdentity": {"userName": "Alice"}})
    ends = one("userIdentity.arn|fieldref|endswith", "requestParameters.userName")
    assert ends.matches({"userIdentity": {"arn": "arn:aws:iam::1:user/Bob"},
                         "requestParameters": {"userName": "bob"}})


@pytest.mark.parametrize(("modifier", "matching", "failing"), [
    ("gt", [6, "7", 6.5], [5, "5", True, "x"]),
    ("gte", [5, "5.0"], [4]),
    ("lt", [4, "-1"], [5, "5"]),
    ("lte", [5, 0], [5.5]),
])
def test_numeric_comparisons(modifier: str, matching: list[Any], failing: list[Any]) -> None:
    r = one(f"requestParameters.maxResults|{modifier}", 5)
    for value in matching:
        assert r.matches({"requestParameters": {"maxResults": value}}), value
    for value in failing:
        assert not r.matches({"requestParameters": {"maxResults": value}}), value


def test_neq_negates_the_item() -> None:
    r = one("eventName|neq", "StopLogging")
    assert r.matches({"eventName": "StartLogging"})
    assert not r.matches({"eventName": "stoplogging"})


def test_booleans_and_numbers_compare_with_their_text() -> None:
    text_false = one("requestParameters.enable", "false")
    assert text_false.matches({"requestParameters": {"enable": False}})
    assert text_false.matches({"requestParameters": {"enable": "FALSE"}})
    assert not text_false.matches({"requestParameters": {"enable": True}})
    yaml_true = one("readOnly", True)
    assert yaml_true.matches({"readOnly": True})
    assert yaml_true.matches({"readOnly": "true"})
    assert not yaml_true.matches({"readOnly": False})
    number = one("requestParameters.port", 22)
    assert number.matches({"requestParameters": {"port": 22}})
    assert number.matches({"requestParameters": {"port": "22"}})
    assert not number.matches({"requestParameters": {"port": 23}})
    assert one("requestParameters.port", "22").matches({"requestParameters": {"port": 22}})


def test_unsupported_values_refuse_to_compile() -> None:
    with pytest.raises(RuleError, match="timestamp"):
        one("eventTime|minute", 5)
    with pytest.raises(RuleError, match="regular expression"):
        one("userAgent|re", r"\pL+")  # valid for RE2, which pySigma checks with; not for re
    with pytest.raises(RuleError, match="placeholder"):
        one("sourceIPAddress|expand", "%trusted_ranges%")


# --- conditions --------------------------------------------------------------------------------

def test_selectors_not_and_parentheses() -> None:
    detection = {
        "sel_a": {"eventName": "A"}, "sel_b": {"eventSource": "b"},
        "filter": {"errorCode|exists": True},
    }
    any_sel = rule({**detection, "condition": "1 of sel_* and not filter"})
    all_sel = rule({**detection, "condition": "all of sel_*"})
    them = rule({**detection, "condition": "all of them"})
    one_of_them = rule({**detection, "condition": "1 of them"})
    grouped = rule({**detection, "condition": "not (sel_a or sel_b)"})
    ab = {"eventName": "A", "eventSource": "b"}
    assert any_sel.matches({"eventName": "A"})
    assert not any_sel.matches({"eventName": "A", "errorCode": "X"})
    assert all_sel.matches(ab) and not all_sel.matches({"eventName": "A"})
    assert them.matches({**ab, "errorCode": "X"}) and not them.matches(ab)
    assert one_of_them.matches({"errorCode": "X"}) and not one_of_them.matches({})
    assert grouped.matches({"eventName": "C"}) and not grouped.matches({"eventSource": "B"})


def test_list_of_maps_is_an_or() -> None:
    r = rule({"sel": [{"eventName": "A"}, {"eventSource": "b", "awsRegion": "r"}],
              "condition": "sel"})
    assert r.matches({"eventName": "a"})
    assert r.matches({"eventSource": "B", "awsRegion": "R"})
    assert not r.matches({"eventSource": "b"})


def test_keyword_search_looks_at_the_whole_record() -> None:
    r = rule({"keywords": ["trufflehog"], "condition": "keywords"})
    assert r.matches({"userAgent": "TruffleHog/3"})
    assert r.matches({"requestParameters": {"deep": ["x", "trufflehog"]}})
    assert not r.matches({"userAgent": "aws-cli"})


# --- field paths -------------------------------------------------------------------------------

def test_field_names_are_case_sensitive() -> None:
    assert not one("eventname", "CreateUser").matches({"eventName": "CreateUser"})


def test_nested_paths_and_json_text_members() -> None:
    r = one("userIdentity.sessionContext.attributes.mfaAuthenticated", "false")
    assert r.matches({"userIdentity": {"sessionContext": {"attributes": {
        "mfaAuthenticated": "false"}}}})
    text = one("requestParameters.userName", "bob")
    assert text.matches({"requestParameters": '{"userName": "Bob"}'})
    assert not text.matches({"requestParameters": "not json"})
    assert one("requestParameters", None).matches({"requestParameters": "null"})
    assert not one("requestParameters|exists", True).matches({"requestParameters": "null"})
    nested_text = one("requestParameters.policyDocument.Version", "2012-10-17")
    assert nested_text.matches({"requestParameters": {
        "policyDocument": '{"Version":"2012-10-17"}'}})


def test_lists_match_when_any_element_does_at_any_level() -> None:
    r = one("requestParameters.containerDefinitions.command|contains", "$AWS_CONTAINER")
    event = {"requestParameters": {"containerDefinitions": [
        {"command": ["sh", "-c"]}, {"command": [["curl $AWS_CONTAINER_X"]]}]}}
    assert r.matches(event)
    assert not r.matches({"requestParameters": {"containerDefinitions": [{"command": ["sh"]}]}})
    assert one("resources.ARN|endswith", ":key/1").matches(
        {"resources": [{"ARN": "arn:a:key/2"}, {"ARN": "arn:a:key/1"}]})


def test_contains_on_a_whole_object_sees_its_json_text_and_its_leaves() -> None:
    r = one("requestParameters|contains", '"status":"Suspended"')
    event = {"requestParameters": {"VersioningConfiguration": {"status": "Suspended"}}}
    assert r.matches(event)
    assert r.matches({"requestParameters": '{"VersioningConfiguration": {"status": "Suspended"}}'})
    assert one("requestParameters|contains", "suspended").matches(event)
    assert one("requestParameters", "Suspended").matches(event)  # a leaf equals it
    assert not one("requestParameters|contains", "Enabled").matches(event)


# --- meta and describe -------------------------------------------------------------------------

def test_meta_index_and_describe() -> None:
    r = rule({"sel": {"eventName": ["StopLogging", "DeleteTrail"]}, "condition": "sel"})
    assert r.meta.index == {"eventName": frozenset({"stoplogging", "deletetrail"})}
    assert (r.meta.id, r.meta.severity, r.meta.source) == (
        "5b0f1f5e-0d8a-4a4e-9a51-2f3c1a9b7e01", "high", "sigma:test.yml")
    detail = r.describe({"eventName": "StopLogging", "recipientAccountId": "111",
                         "userIdentity": {"principalId": "AID1"}, "awsRegion": "eu-west-1"})
    assert detail.dedup_key == "111|AID1"
    assert detail.title == "test rule" and detail.severity == "high"
    assert detail.context == {"eventName": "StopLogging", "awsRegion": "eu-west-1"}
    arn = r.describe({"userIdentity": {"arn": "arn:x", "principalId": "AID1"}})
    assert arn.dedup_key == "|arn:x"
    assert r.describe({}).dedup_key == "|unknown"
