"""The report's SQL over the lake (DuckDB, :mod:`pipeline.lake.query`'s connection).

Every query reads :data:`~pipeline.report.window.WINDOW_VIEW` (the ``cloudtrail`` rows of the
window, :func:`~pipeline.report.window.view_sql`) and returns plain rows (dicts). Time series
are counted per bucket (``bucket_ms``: the bucket's start, epoch ms); top-N lists are ordered
by count descending, ties by the value ascending, so the same lake gives the same report.

Definitions (CloudTrail's fields, as the lake's lower-case columns):

* **principal**: ``useridentity.arn``, else ``useridentity.principalid``, else
  ``useridentity.type`` (AWS services have no ARN), else ``unknown``;
* **error**: a call with an ``errorcode``;
* **AccessDenied**: an ``errorcode`` of ``AccessDenied``, ``AccessDeniedException``,
  ``UnauthorizedOperation`` or ``Client.UnauthorizedOperation`` (the codes AWS services use);
* **console login**: ``eventname = 'ConsoleLogin'``; MFA from ``additionalEventData.MFAUsed``
  (``Yes``/``No``; absent: ``unknown``), outcome from ``responseElements.ConsoleLogin``;
* **role assumption**: ``AssumeRole*`` calls; the source account is the caller's
  (``useridentity.accountid``, else ``external``: SAML and web-identity callers have none),
  the target the account in ``requestParameters.roleArn`` (else the recipient account).
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline.report.window import WINDOW_VIEW

PRINCIPAL = ("coalesce(useridentity.arn, useridentity.principalid, useridentity.type, "
             "'unknown')")
ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                       "Client.UnauthorizedOperation")
_DENIED = "errorcode IN (" + ", ".join(f"'{c}'" for c in ACCESS_DENIED_CODES) + ")"
_MFA = "coalesce(json_extract_string(additionaleventdata, '$.MFAUsed'), 'unknown')"
_LOGIN_OK = "coalesce(json_extract_string(responseelements, '$.ConsoleLogin'), '') = 'Success'"
_TARGET = ("coalesce(nullif(regexp_extract(json_extract_string(requestparameters, '$.roleArn'), "
           "'^arn:[^:]+:iam::([0-9]+):', 1), ''), recipientaccountid, account, 'unknown')")


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
         ) -> list[dict[str, Any]]:
    """The result of ``sql`` as a list of dicts."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _bucket(bucket_ms: int) -> str:
    return f"(_event_time_ms // {int(bucket_ms)}) * {int(bucket_ms)}"


def calls_over_time(con: duckdb.DuckDBPyConnection, bucket_ms: int) -> list[dict[str, Any]]:
    """Calls per (bucket_ms, account, region)."""
    return rows(con, f"""
        SELECT {_bucket(bucket_ms)} AS bucket_ms, account, region, count(*) AS calls
        FROM {WINDOW_VIEW} GROUP BY ALL ORDER BY bucket_ms, account, region""")


def calls_by_account_region(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top account/region pairs: calls, errors and the error rate."""
    return rows(con, f"""
        SELECT account, region, count(*) AS calls, count(errorcode) AS errors,
               round(count(errorcode) / count(*), 4) AS error_rate
        FROM {WINDOW_VIEW} GROUP BY ALL ORDER BY calls DESC, account, region LIMIT ?""", [top])


def errors_over_time(con: duckdb.DuckDBPyConnection, bucket_ms: int) -> list[dict[str, Any]]:
    """Calls, errors and the error rate per bucket_ms."""
    return rows(con, f"""
        SELECT {_bucket(bucket_ms)} AS bucket_ms, count(*) AS calls, count(errorcode) AS errors,
               count(errorcode) / count(*) AS error_rate
        FROM {WINDOW_VIEW} GROUP BY ALL ORDER BY bucket_ms""")


def top_error_codes(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    return rows(con, f"""
        SELECT errorcode AS error_code, count(*) AS calls FROM {WINDOW_VIEW}
        WHERE errorcode IS NOT NULL GROUP BY ALL ORDER BY calls DESC, error_code LIMIT ?""",
                [top])


def top_principals(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top principals: calls, errors, distinct source IPs."""
    return rows(con, f"""
        SELECT {PRINCIPAL} AS principal, count(*) AS calls, count(errorcode) AS errors,
               count(DISTINCT sourceipaddress) AS source_ips
        FROM {WINDOW_VIEW} GROUP BY ALL ORDER BY calls DESC, principal LIMIT ?""", [top])


def top_source_ips(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top source IPs (or the AWS service host CloudTrail writes there): calls, errors,
    distinct principals."""
    return rows(con, f"""
        SELECT coalesce(sourceipaddress, 'unknown') AS source_ip, count(*) AS calls,
               count(errorcode) AS errors, count(DISTINCT {PRINCIPAL}) AS principals
        FROM {WINDOW_VIEW} GROUP BY ALL ORDER BY calls DESC, source_ip LIMIT ?""", [top])


def console_logins_over_time(con: duckdb.DuckDBPyConnection, bucket_ms: int
                             ) -> list[dict[str, Any]]:
    """Console logins per (bucket_ms, mfa)."""
    return rows(con, f"""
        SELECT {_bucket(bucket_ms)} AS bucket_ms, {_MFA} AS mfa, count(*) AS logins
        FROM {WINDOW_VIEW} WHERE eventname = 'ConsoleLogin'
        GROUP BY ALL ORDER BY bucket_ms, mfa""")


def console_logins(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top (principal, mfa) pairs of console logins: successes and failures."""
    return rows(con, f"""
        SELECT {PRINCIPAL} AS principal, {_MFA} AS mfa,
               count_if({_LOGIN_OK}) AS successes, count_if(NOT {_LOGIN_OK}) AS failures
        FROM {WINDOW_VIEW} WHERE eventname = 'ConsoleLogin'
        GROUP BY ALL ORDER BY successes + failures DESC, principal, mfa LIMIT ?""", [top])


def access_denied(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top principals by AccessDenied calls: count, distinct event names, the most
    frequent event name."""
    return rows(con, f"""
        SELECT {PRINCIPAL} AS principal, count(*) AS denied,
               count(DISTINCT eventname) AS event_names, mode(eventname) AS top_event_name
        FROM {WINDOW_VIEW} WHERE {_DENIED}
        GROUP BY ALL ORDER BY denied DESC, principal LIMIT ?""", [top])


def role_assumptions(con: duckdb.DuckDBPyConnection, top: int) -> list[dict[str, Any]]:
    """Top (source account, target account) AssumeRole edges: calls and failures."""
    return rows(con, f"""
        SELECT coalesce(useridentity.accountid, 'external') AS source_account,
               {_TARGET} AS target_account, count(*) AS calls,
               count(errorcode) AS failures
        FROM {WINDOW_VIEW} WHERE eventname LIKE 'AssumeRole%'
        GROUP BY ALL ORDER BY calls DESC, source_account, target_account LIMIT ?""", [top])


def total_calls(con: duckdb.DuckDBPyConnection) -> int:
    result = con.execute(f"SELECT count(*) FROM {WINDOW_VIEW}").fetchone()
    return int(result[0]) if result else 0
