"""Vectorized Sigma evaluation: on every row it must agree with the per-row matcher exactly."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_sigma_match import one, rule

from pipeline.events import wire
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.mapping import IngestMeta, from_avro, to_avro
from pipeline.events.schemas import default_registry
from pipeline.rules.ruleset import SIGMA_PACK_DIR
from pipeline.rules.sigma.columns import Columns
from pipeline.rules.sigma.loader import CompiledSigmaRule, load_sigma
from pipeline.rules.sigma.vector import VectorRule, vectorize

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
INGEST = IngestMeta(1_764_000_000_000, "test", "test-producer")


def decoded(records: list[dict[str, Any]]) -> tuple[pa.Table, int]:
    """The events table the alerter would see for ``records``, and how many were skipped."""
    values, skipped = [], 0
    for record in records:
        try:
            values.append(wire.encode(to_avro(record, ingest=INGEST)))
        except Exception:  # a record the mapping refuses never reaches the alerter
            skipped += 1
    batch = AvroBatchDecoder(reader=default_registry().newest())(values)
    return batch.table, skipped + len(batch.errors)


def check(vector: VectorRule, table: pa.Table) -> tuple[list[bool], list[int]]:
    """Asserts the vectorized verdict (undecided rows re-checked per row) equals the per-row
    matcher on every row; returns the verdicts and the undecided rows."""
    rows = [from_avro(datum) for datum in table.to_pylist()]
    expected = [vector.rule.matches(row) for row in rows]
    mask = vector.mask(table, lambda row: vector.rule.matches(rows[row]))
    assert mask.null_count == 0
    assert mask.to_pylist() == expected, vector.rule.meta.source
    undecided = pc.indices_nonzero(vector.evaluate(Columns(table)).undecided).to_pylist()
    return expected, undecided


def exact(compiled: CompiledSigmaRule, records: list[dict[str, Any]]
          ) -> tuple[list[bool], list[int]]:
    vector = vectorize(compiled)
    assert vector is not None
    table, skipped = decoded(records)
    assert skipped == 0
    return check(vector, table)


# --- the corpus: every SigmaHQ CloudTrail rule and the pack's rules over every record ------

@cache
def corpus_table() -> tuple[pa.Table, int]:
    records = [json.loads(line)
               for path in sorted((CORPUS / "cloudtrail").glob("*/records.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    return decoded(records)


@cache
def corpus_rules() -> list[CompiledSigmaRule]:
    loaded = load_sigma([CORPUS / "sigma" / "aws_cloudtrail", SIGMA_PACK_DIR])
    assert not loaded.problems
    return loaded.rules


def test_every_vectorizable_rule_agrees_with_the_matcher_on_every_corpus_record() -> None:
    table, skipped = corpus_table()
    assert table.num_rows > 1000 and skipped < 10
    vectors = [v for v in map(vectorize, corpus_rules()) if v is not None]
    assert len(vectors) > len(corpus_rules()) // 2
    # chunks that are slices (offsets), as a poll's tables may be
    chunked = pa.concat_tables([table.slice(0, 400), table.slice(400)])
    matched = 0
    for vector in vectors:
        expected, _ = check(vector, table)
        assert check(vector, chunked)[0] == expected
        matched += sum(expected)
    assert matched > 0  # the corpus exercises the rules, not just their misses


def test_rules_reading_json_text_members_are_not_vectorized() -> None:
    for compiled in corpus_rules():
        json_text = any(f.split(".")[0] in ("requestParameters", "responseElements",
                                            "additionalEventData") for f in compiled.fields)
        if json_text:
            assert vectorize(compiled) is None, compiled.meta.source


def test_the_assumed_role_rule_vectorizes_and_decides_plain_traffic() -> None:
    (assume,) = [r for r in corpus_rules() if r.meta.source.endswith("assumerole_misuse.yml")]
    vector = vectorize(assume)
    assert vector is not None
    issuer = {"type": "Role", "arn": "arn:aws:iam::1:role/x"}
    expected, undecided = check(vector, decoded([
        {"userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": issuer}}},
        {"userIdentity": {"type": "assumedrole", "sessionContext": {"sessionIssuer": issuer}}},
        {"userIdentity": {"type": "IAMUser"}},
        {"eventName": "GetCallerIdentity"},
    ])[0])
    assert expected == [True, True, False, False]
    assert undecided == []


# --- crafted tables ---------------------------------------------------------------------------

def test_non_ascii_values_are_undecided_and_rechecked() -> None:
    records = [{"userAgent": "K"}, {"userAgent": "\u212a"}, {"userAgent": "straße"},
               {"userAgent": "STRASSE"}, {"userAgent": "x"}, {}]
    expected, undecided = exact(one("userAgent", "k"), records)
    assert expected == [True, True, False, False, False, False]
    assert undecided == [1, 2]
    expected, _ = exact(one("userAgent|contains", "SS"), records)
    assert expected == [False, False, True, True, False, False]


def test_cased_values_decide_non_ascii_rows_too() -> None:
    records = [{"userAgent": "é-x"}, {"userAgent": "É-x"}, {"userAgent": "e-x"}]
    expected, undecided = exact(one("userAgent|cased", "é-?"), records)
    assert expected == [True, False, False]
    assert undecided == []


def test_wildcards_and_escapes() -> None:
    records = [{"eventName": "a*b"}, {"eventName": "aXb"}, {"eventName": "a?b"},
               {"eventName": "a\nb"}, {"eventName": "A.B"}, {"eventName": "ab"}]
    assert exact(one("eventName", "a\\*b"), records)[0] == [True, False, False, False, False,
                                                             False]
    assert exact(one("eventName", "a?b"), records)[0] == [True, True, True, True, True, False]
    assert exact(one("eventName", "*\\?*"), records)[0] == [False, False, True, False, False,
                                                            False]
    assert exact(one("eventName", "a*"), records)[0] == [True] * 6
    assert exact(one("eventName|endswith", ".b"), records)[0] == [False] * 4 + [True, False]
    assert exact(one("eventName", "*"), [*records, {}])[0] == [True] * 6 + [False]


def test_nulls_missing_struct_members_and_missing_columns() -> None:
    records: list[dict[str, Any]] = [
        {"userIdentity": {"type": "Root"}}, {"userIdentity": {}}, {"userIdentity": None}, {},
        {"userIdentity": {"sessionContext": {"sessionIssuer": {"type": "Role"}}}}]
    path = "userIdentity.sessionContext.sessionIssuer.type"
    assert exact(one(path, None), records)[0] == [True, True, True, True, False]
    assert exact(one(f"{path}|exists", True), records)[0] == [False] * 4 + [True]
    assert exact(one("userIdentity.type|exists", False), records)[0] == [False] + [True] * 4
    empty: list[dict[str, Any]] = [{"eventName": ""}, {"eventName": None}, {}]
    assert exact(one("eventName", ""), empty)[0] == [True, False, False]
    assert exact(one("eventName", None), empty)[0] == [False, True, True]
    table, _ = decoded(records)
    vector = vectorize(one("userIdentity.type", None))
    assert vector is not None
    assert check(vector, table.drop_columns(["userIdentity"]))[0] == [True] * 5


def test_paths_the_schema_does_not_type_read_from_unmodelled_rows_only() -> None:
    records: list[dict[str, Any]] = [
        {"eventName": "A"}, {"customField": "x"}, {"readOnly": "true"}, {"readOnly": True},
        {"userIdentity": {"type": 5}}]
    expected, undecided = exact(one("customField", "X"), records)
    assert (expected, undecided) == ([False, True, False, False, False], [1])
    expected, undecided = exact(one("readOnly", "true"), records)
    assert (expected, undecided) == ([False, False, True, True, False], [2])
    assert exact(one("userIdentity.type|exists", True), records) == ([False] * 4 + [True], [4])
    assert exact(one("_topic|exists", True), records)[0] == [False] * 5
    assert exact(one("eventTimeMs", None), records)[0] == [True] * 5


def test_booleans_read_as_json_true_false() -> None:
    records = [{"readOnly": True}, {"readOnly": False}, {}]
    assert exact(one("readOnly", True), records)[0] == [True, False, False]
    assert exact(one("readOnly", "FALSE"), records)[0] == [False, True, False]
    assert exact(one("readOnly|startswith", "t"), records)[0] == [True, False, False]
    assert exact(one("readOnly", 1), records)[0] == [False, False, False]
    assert exact(one("errorCode", False), [{"errorCode": "false"}, {"errorCode": "no"}])[0] \
        == [True, False]


def test_regular_expressions() -> None:
    arn = "userIdentity.arn|re"
    records = [{"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/aws:x/y"}},
               {"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/AWS:x/y"}},
               {"userIdentity": {"arn": "end\n"}}, {"userIdentity": {"arn": "end"}}, {}]
    assert exact(one(arn, ".+:assumed-role/aws:.+"), records)[0] == [True] + [False] * 4
    assert exact(one(f"{arn}|i", "ASSUMED-ROLE/aws:"), records)[0] == [True, True] + [False] * 3
    expected, undecided = exact(one(arn, "d$"), records)
    assert (expected, undecided) == ([False, False, True, True, False], [2])
    assert exact(one(arn, "^(?:en|x)d\\.?"), records)[0] == [False, False, True, True, False]
    for unsupported in ("\\w+", "[a-z]", "a{2}", "(?i)a", "\\bx", "\\d"):
        assert vectorize(one(arn, unsupported)) is None, unsupported


def test_conditions_not_and_or_one_of_all_of() -> None:
    compiled = rule({"a": {"eventName": ["CreateUser", "DeleteUser"]},
                     "b": {"errorCode": None}, "c": {"eventSource|endswith": "iam.amazonaws.com"},
                     "condition": "(1 of a or all of c) and not b"})
    records = [{"eventName": "createuser", "errorCode": "X"}, {"eventName": "CreateUser"},
               {"eventSource": "iam.amazonaws.com", "errorCode": "AccessDenied"},
               {"eventName": "deleteUser", "eventSource": "s3", "errorCode": ""}]
    assert exact(compiled, records)[0] == [True, False, True, True]


@pytest.mark.parametrize("detection", [
    {"sel": {"requestParameters.userName": "x"}, "condition": "sel"},
    {"sel": {"resources.ARN": "x"}, "condition": "sel"},
    {"sel": {"userIdentity.sessionContext": "x"}, "condition": "sel"},
    {"sel": {"sourceIPAddress|cidr": "10.0.0.0/8"}, "condition": "sel"},
    {"sel": {"userIdentity.arn|fieldref": "userIdentity.principalId"}, "condition": "sel"},
    {"sel": {"eventName": 5}, "condition": "sel"},
    {"sel": {"eventName|gt": 5}, "condition": "sel"},
    {"sel": ["keyword"], "condition": "sel"},
])
def test_what_is_not_vectorized(detection: dict[str, Any]) -> None:
    assert vectorize(rule(detection)) is None


def test_an_empty_table() -> None:
    table, _ = decoded([{"eventName": "A"}])
    vector = vectorize(one("eventName", "a"))
    assert vector is not None
    assert vector.mask(table.slice(0, 0), lambda row: True).to_pylist() == []
