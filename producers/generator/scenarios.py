"""Attack scenarios injected into synthetic CloudTrail traffic.

Each scenario is a short sequence of events shaped like the real attack's CloudTrail trail,
with the exact fields public detections key on (Sigma ``aws_cloudtrail_*``, Panther
``AWS.*`` rules). Every injected record carries
``additionalEventData.trailpipeScenario = <name>`` (merged into any existing
additionalEventData), which survives CloudTrail JSON/Avro round trips; use :func:`scenario_of`.

Scenario callers are real identities of the account used from 203.0.113.0/24 with
offensive-tooling user agents; benign traffic never uses that range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producers.generator.base import aws_date, hex_id, key_id
from producers.generator.catalog import Api, denied_message, iam_action
from producers.generator.record import Account, Env, Step

MARKER = "trailpipeScenario"
"""Key inside ``additionalEventData`` naming the scenario that produced a record."""

_CT, _S3, _IAM, _KMS, _EC2, _LAMBDA = (f"{s}.amazonaws.com" for s in (
    "cloudtrail", "s3", "iam", "kms", "ec2", "lambda"))
_G = "us-east-1"
_DAY_MS = 86_400_000
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_RECON = ((_IAM, "ListUsers"), (_IAM, "ListRoles"), (_IAM, "ListPolicies"),
          (_IAM, "ListGroups"), (_IAM, "GetAccountAuthorizationDetails"),
          (_IAM, "ListAccessKeys"), (_IAM, "GetAccountPasswordPolicy"),
          (_S3, "ListBuckets"), (_S3, "GetBucketPolicy"), (_S3, "GetBucketAcl"))


@dataclass(frozen=True, slots=True)
class Scenario:
    """``build`` returns exactly ``size`` steps; the generator spaces consecutive steps by
    0..``max_gap`` benign records and keeps the whole span within a minute of event time."""

    name: str
    size: int
    max_gap: int
    build: Callable[[Env], list[Step]]

    @property
    def max_span(self) -> int:
        """The most records (injected + interleaved benign) the scenario can occupy."""
        return self.size + (self.size - 1) * self.max_gap


def _w(source: str, name: str, region: str | None = None) -> Api:
    return Api(source, name, False, region=region)


def _dated(env: Env, p: Any, api: Api, region: str, req: Any,
           resp: Callable[[int], Any]) -> Step:
    """A step whose responseElements depend on the event time."""
    return lambda t: env.record(p, api, t, region, (req, resp(t), None, None))


def _setup(env: Env, kind: str) -> tuple[Account, Any, str]:
    acct = env.rng.choice(env.accounts)
    return acct, env.attacker(acct, kind), env.rng.choice(env.regions)


def _logging_tampering(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "AssumedRole")
    arn = f"arn:aws:cloudtrail:{region}:{acct.id}:trail/{acct.res.trail}"

    def selectors() -> list[dict[str, Any]]:
        return [{"readWriteType": "All", "includeManagementEvents": False,
                 "dataResources": [], "excludeManagementEventSources": []}]
    return [
        env.step(p, _w(_CT, "PutEventSelectors"), region,
                 {"trailName": arn, "eventSelectors": selectors()},
                 {"trailARN": arn, "eventSelectors": selectors()}),
        env.step(p, _w(_CT, "StopLogging"), region, {"name": arn}),
        env.step(p, _w(_CT, "DeleteTrail"), region, {"name": arn}),
    ]


def _root_login_no_mfa(env: Env) -> list[Step]:
    _acct, p, _region = _setup(env, "Root")
    aed = {"LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23"
                      "&isauthcode=true", "MobileVersion": "No", "MFAUsed": "No"}
    login = Api("signin.amazonaws.com", "ConsoleLogin", False, region=_G,
                event_type="AwsConsoleSignIn")
    return [env.step(p, login, _G, None, {"ConsoleLogin": "Success"},
                     extra={"additionalEventData": aed}),
            env.step(p, Api(_IAM, "GetAccountSummary", True), _G)]


def _console_brute_force(env: Env) -> list[Step]:
    """Six wrong passwords, then the right one, from one address within the minute."""
    _acct, p, _region = _setup(env, "IAMUser")
    aed = {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No",
           "MFAUsed": "No"}
    login = Api("signin.amazonaws.com", "ConsoleLogin", False, region=_G,
                event_type="AwsConsoleSignIn")
    failed = [env.step(p, login, _G, None, {"ConsoleLogin": "Failure"},
                       extra={"additionalEventData": aed,
                              "errorMessage": "Failed authentication"}) for _ in range(6)]
    return [*failed, env.step(p, login, _G, None, {"ConsoleLogin": "Success"},
                              extra={"additionalEventData": aed})]


def _access_denied_burst(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "IAMUser")
    steps = []
    for _ in range(25):
        source, name = env.rng.choice(_RECON)
        api = Api(source, name, True)
        req, res_arn = None, "*"
        if name.startswith("GetBucket"):
            bucket = env.rng.choice(acct.res.buckets)
            req, res_arn = {"bucketName": bucket}, f"arn:aws:s3:::{bucket}"
        error = ("AccessDenied", denied_message(p.arn, iam_action(api), res_arn))
        steps.append(env.step(p, api, _G if source == _IAM else region, req, error=error))
    return steps


def _iam_privesc(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "IAMUser")
    user, fn = f"svc-backup-{env.rng.randrange(1000):03d}", f"ops-sync-{env.rng.randrange(1000)}"
    uid, akid = key_id(env.rng, "AIDA"), key_id(env.rng, "AKIA")
    role = f"arn:aws:iam::{acct.id}:role/lambda-exec-role"
    fn_arn = f"arn:aws:lambda:{region}:{acct.id}:function:{fn}"
    return [
        _dated(env, p, _w(_IAM, "CreateUser"), _G, {"userName": user}, lambda t: {"user": {
            "path": "/", "userName": user, "userId": uid, "createDate": aws_date(t),
            "arn": f"arn:aws:iam::{acct.id}:user/{user}"}}),
        _dated(env, p, _w(_IAM, "CreateAccessKey"), _G, {"userName": user}, lambda t: {
            "accessKey": {"userName": user, "accessKeyId": akid, "status": "Active",
                          "createDate": aws_date(t)}}),
        env.step(p, _w(_IAM, "AttachUserPolicy"), _G, {"userName": user,
                                                       "policyArn": ADMIN_POLICY}),
        _dated(env, p, _w(_IAM, "CreateLoginProfile"), _G,
               {"userName": user, "passwordResetRequired": False}, lambda t: {"loginProfile": {
                   "userName": user, "createDate": aws_date(t), "passwordResetRequired": False}}),
        env.step(p, _w(_LAMBDA, "CreateFunction20150331"), region,
                 {"functionName": fn, "runtime": "python3.12", "role": role,
                  "handler": "index.handler", "code": {}, "publish": False},
                 {"functionName": fn, "functionArn": fn_arn, "runtime": "python3.12",
                  "role": role, "handler": "index.handler", "state": "Pending"}),
        env.step(p, Api(_LAMBDA, "Invoke", False, data=True), region, {"functionName": fn_arn},
                 resources=[{"accountId": acct.id, "type": "AWS::Lambda::Function",
                             "ARN": fn_arn}],
                 extra={"additionalEventData": {"functionVersion": f"{fn_arn}:$LATEST"}}),
    ]


def _public_bucket_policy(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "AssumedRole")
    bucket = env.rng.choice(acct.res.buckets)
    host, owner = f"{bucket}.s3.{region}.amazonaws.com", f"{env.rng.getrandbits(256):064x}"

    def common(**kw: Any) -> dict[str, Any]:
        return {"bucketName": bucket, "Host": host, **kw}

    def res() -> list[dict[str, str]]:
        return [{"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    acl = {"AccessControlList": {"Grant": [
        {"Grantee": {"xsi:type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"xsi:type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]},
        "Owner": {"ID": owner}, "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}
    return [
        env.step(p, _w(_S3, "DeleteBucketPublicAccessBlock"), region,
                 common(publicAccessBlock=[""]), resources=res()),
        env.step(p, _w(_S3, "PutBucketPolicy"), region, common(bucketPolicy=policy, policy=[""]),
                 resources=res()),
        env.step(p, _w(_S3, "PutBucketAcl"), region, common(AccessControlPolicy=acl, acl=[""]),
                 resources=res()),
    ]


def _kms_key_deletion(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "AssumedRole")
    key = env.rng.choice(acct.res.keys)
    arn = f"arn:aws:kms:{region}:{acct.id}:key/{key}"
    schedule = _w(_KMS, "ScheduleKeyDeletion")

    def resources() -> list[dict[str, str]]:
        return [{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": arn}]

    def deletion(t: int) -> dict[str, Any]:
        return env.record(p, schedule, t, region, (
            {"keyId": key, "pendingWindowInDays": 7},
            {"keyId": arn, "keyState": "PendingDeletion", "pendingWindowInDays": 7,
             "deletionDate": aws_date(t + 7 * _DAY_MS)}, resources(), None))
    return [env.step(p, _w(_KMS, "DisableKey"), region, {"keyId": key},
                     resources=resources()), deletion]


def _sg_open_world(env: Env) -> list[Step]:
    acct, p, region = _setup(env, "IAMUser")
    group = env.rng.choice(acct.res.groups)
    steps = []
    for port in (22, 3389):
        perm = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {},
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}, "ipv6Ranges": {},
                "prefixListIds": {}}
        rule = {"groupOwnerId": acct.id, "groupId": group, "isEgress": False,
                "securityGroupRuleId": hex_id(env.rng, "sgr-0", 16), "ipProtocol": "tcp",
                "fromPort": port, "toPort": port, "cidrIpv4": "0.0.0.0/0"}
        steps.append(env.step(p, _w(_EC2, "AuthorizeSecurityGroupIngress"), region,
                              {"groupId": group, "ipPermissions": {"items": [perm]}},
                              {"_return": True, "securityGroupRuleSet": {"items": [rule]}}))
    return steps


_REGISTRY: Mapping[str, Scenario] = {s.name: s for s in (
    Scenario("logging-tampering", 3, 3, _logging_tampering),
    Scenario("root-login-no-mfa", 2, 3, _root_login_no_mfa),
    Scenario("access-denied-burst", 25, 1, _access_denied_burst),
    Scenario("iam-privesc", 6, 2, _iam_privesc),
    Scenario("public-bucket-policy", 3, 3, _public_bucket_policy),
    Scenario("kms-key-deletion", 2, 3, _kms_key_deletion),
    Scenario("sg-open-world", 2, 3, _sg_open_world),
    Scenario("console-brute-force", 7, 2, _console_brute_force),
)}

SCENARIOS: tuple[str, ...] = tuple(_REGISTRY)
"""Names accepted by ``Generator(scenarios=...)``."""


def resolve(names: Sequence[str]) -> tuple[Scenario, ...]:
    """The scenarios for ``names`` (order and repeats kept); ValueError names the valid ones."""
    if isinstance(names, str):
        raise TypeError("scenarios must be a sequence of names, not a string")
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; valid: {', '.join(SCENARIOS)}")
    return tuple(_REGISTRY[n] for n in names)


def mark(record: dict[str, Any], name: str) -> dict[str, Any]:
    """Tag ``record`` (in place, and return it) as produced by scenario ``name``."""
    aed = record.get("additionalEventData")
    record["additionalEventData"] = {**aed, MARKER: name} if isinstance(aed, dict) else {
        MARKER: name}
    return record


def scenario_of(record: Mapping[str, Any]) -> str | None:
    """The scenario name a record was injected by, or None for benign traffic."""
    aed = record.get("additionalEventData")
    return aed.get(MARKER) if isinstance(aed, dict) else None
