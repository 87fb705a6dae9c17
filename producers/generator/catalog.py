"""The service catalogue for normal (benign) synthetic traffic.

Each :class:`Api` is one CloudTrail ``eventSource``/``eventName`` with its ``readOnly`` flag,
category and a parameter builder returning ``(requestParameters, responseElements, resources,
extra top-level fields)``. Benign traffic deliberately avoids the calls the attack scenarios
use (trail changes, key deletion, security-group ingress, IAM user/policy changes, bucket
policies and ACLs), so that detections fire on injected scenarios only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from producers.generator.base import HOUR_MS, Principal, aws_date, hex_id, key_id, new_uuid

Params = tuple[Any, Any, list[dict[str, str]] | None, dict[str, Any] | None]
ParamFn = Callable[[random.Random, "Resources", str, Principal, int], Params]
NO_PARAMS: Params = (None, None, None, None)

VERSIONS: dict[str, str] = {"s3.amazonaws.com": "1.09", "ec2.amazonaws.com": "1.09",
                            "iam.amazonaws.com": "1.09", "lambda.amazonaws.com": "1.09",
                            "dynamodb.amazonaws.com": "1.09"}
"""eventVersion by eventSource; others use ``1.08``."""


@dataclass(frozen=True, slots=True)
class Resources:
    """Named resources of one account that benign and attack traffic refer to."""

    account: str
    buckets: tuple[str, ...]
    objects: tuple[str, ...]
    tables: tuple[str, ...]
    functions: tuple[str, ...]
    keys: tuple[str, ...]
    instances: tuple[str, ...]
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    users: tuple[str, ...]
    trail: str


def make_resources(rng: random.Random, acct: str, roles: tuple[str, ...],
                   users: tuple[str, ...]) -> Resources:
    """Deterministic resource names for account ``acct``."""
    return Resources(
        account=acct,
        buckets=tuple(f"{b}-{acct}" for b in ("app-assets", "data-lake", "build-artifacts")),
        objects=("index.html", "reports/2024/q1.csv", "img/logo.png", "exports/users.json.gz",
                 "builds/app-1.4.2.zip"),
        tables=("orders", "sessions", "customers"),
        functions=("api-handler", "thumbnailer", "nightly-report"),
        keys=tuple(new_uuid(rng) for _ in range(2)),
        instances=tuple(hex_id(rng, "i-0", 16) for _ in range(4)),
        groups=tuple(hex_id(rng, "sg-0", 16) for _ in range(2)),
        roles=roles, users=users, trail="management-events")


@dataclass(frozen=True, slots=True)
class Api:
    """One CloudTrail event kind. ``region`` pins global services (IAM, sign-in) to a region."""

    source: str
    name: str
    read_only: bool
    weight: float = 1.0
    params: ParamFn | None = None
    data: bool = False
    region: str | None = None
    event_type: str = "AwsApiCall"

    def build(self, rng: random.Random, res: Resources, region: str, p: Principal,
              now_ms: int) -> Params:
        """requestParameters, responseElements, resources and extra fields for one call."""
        return NO_PARAMS if self.params is None else self.params(rng, res, region, p, now_ms)


def _bucket_arn(res: Resources, b: str) -> dict[str, str]:
    return {"accountId": res.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{b}"}


def _s3_object(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    b, k = rng.choice(res.buckets), rng.choice(res.objects)
    extra = {"additionalEventData": {
        "SignatureVersion": "SigV4", "CipherSuite": p.tls[1], "bytesTransferredIn": 0.0,
        "AuthenticationMethod": "AuthHeader", "bytesTransferredOut": float(rng.randrange(1 << 20))}}
    return ({"bucketName": b, "Host": f"{b}.s3.{region}.amazonaws.com", "key": k}, None,
            [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{b}/{k}"}, _bucket_arn(res, b)],
            extra)


def _s3_bucket(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    b = rng.choice(res.buckets)
    return ({"bucketName": b, "Host": f"{b}.s3.{region}.amazonaws.com"}, None,
            [_bucket_arn(res, b)], None)


def _kms(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    arn = f"arn:aws:kms:{region}:{res.account}:key/{rng.choice(res.keys)}"
    return ({"keyId": arn, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None,
            [{"accountId": res.account, "type": "AWS::KMS::Key", "ARN": arn}], None)


def _kms_service(rng: random.Random, res: Resources, region: str, p: Principal,
                 t: int) -> Params:
    key = rng.choice(res.keys)
    arn = f"arn:aws:kms:{region}:{res.account}:key/{key}"
    return (None, None, [{"accountId": res.account, "type": "AWS::KMS::Key", "ARN": arn}],
            {"serviceEventDetails": {"keyId": key}})


def _table(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    table = rng.choice(res.tables)
    arn = f"arn:aws:dynamodb:{region}:{res.account}:table/{table}"
    return ({"tableName": table, "key": {"id": "HIDDEN_DUE_TO_SECURITY_REASONS"}}, None,
            [{"accountId": res.account, "type": "AWS::DynamoDB::Table", "ARN": arn}], None)


def _invoke(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    arn = f"arn:aws:lambda:{region}:{res.account}:function:{rng.choice(res.functions)}"
    return ({"functionName": arn}, None,
            [{"accountId": res.account, "type": "AWS::Lambda::Function", "ARN": arn}],
            {"additionalEventData": {"functionVersion": f"{arn}:$LATEST"}})


def _assume_role(rng: random.Random, res: Resources, region: str, p: Principal,
                 t: int) -> Params:
    role, session = rng.choice(res.roles), f"session-{rng.randrange(10**9)}"
    role_id = key_id(rng, "AROA")
    session_arn = f"arn:aws:sts::{res.account}:assumed-role/{role}/{session}"
    return ({"roleArn": f"arn:aws:iam::{res.account}:role/{role}", "roleSessionName": session,
             "durationSeconds": 3600},
            {"credentials": {"accessKeyId": key_id(rng, "ASIA"),
                             "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
                             "expiration": aws_date(t + HOUR_MS)},
             "assumedRoleUser": {"assumedRoleId": f"{role_id}:{session}",
                                 "arn": session_arn}},
            [{"accountId": res.account, "type": "AWS::IAM::Role",
              "ARN": f"arn:aws:iam::{res.account}:role/{role}"}], None)


def _trail(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
    return ({"name": f"arn:aws:cloudtrail:{region}:{res.account}:trail/{res.trail}"}, None, None,
            None)


def _instances(rng: random.Random, res: Resources, region: str, p: Principal,
               t: int) -> Params:
    return ({"instancesSet": {"items": [{"instanceId": rng.choice(res.instances)}]}}, None,
            None, None)


def _run_instances(rng: random.Random, res: Resources, region: str, p: Principal,
                   t: int) -> Params:
    iid = hex_id(rng, "i-0", 16)
    return ({"instancesSet": {"items": [{"imageId": hex_id(rng, "ami-0", 16), "minCount": 1,
                                         "maxCount": 1}]}, "instanceType": "t3.micro"},
            {"instancesSet": {"items": [{"instanceId": iid,
                                         "instanceState": {"code": 0, "name": "pending"}}]}},
            None, None)


def _console_login(rng: random.Random, res: Resources, region: str, p: Principal,
                   t: int) -> Params:
    aed = {"LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23"
                      "&isauthcode=true", "MobileVersion": "No",
           "MFAIdentifier": f"arn:aws:iam::{p.account}:mfa/{p.name}", "MFAUsed": "Yes"}
    return (None, {"ConsoleLogin": "Success"}, None, {"additionalEventData": aed})


def _fixed(req: dict[str, Any] | None) -> ParamFn:
    """A builder for calls whose parameters do not vary (a fresh copy per record)."""
    def build(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
        return (None if req is None else {**req}, None, None, None)
    return build


def _named(field: str, attr: str) -> ParamFn:
    """A builder for ``{field: <random member of Resources.attr>}``."""
    def build(rng: random.Random, res: Resources, region: str, p: Principal, t: int) -> Params:
        return ({field: rng.choice(getattr(res, attr))}, None, None, None)
    return build


_S3, _EC2, _IAM, _STS = ("s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com",
                         "sts.amazonaws.com")
_KMS, _CT, _LAMBDA, _DDB = ("kms.amazonaws.com", "cloudtrail.amazonaws.com",
                            "lambda.amazonaws.com", "dynamodb.amazonaws.com")
_G = "us-east-1"

HUMAN_READS: tuple[Api, ...] = (
    Api(_S3, "GetObject", True, 8, _s3_object, data=True),
    Api(_S3, "HeadObject", True, 3, _s3_object, data=True),
    Api(_S3, "ListBuckets", True, 2),
    Api(_S3, "GetBucketAcl", True, 1, _s3_bucket),
    Api(_S3, "GetBucketLocation", True, 1, _s3_bucket),
    Api(_EC2, "DescribeInstances", True, 6, _fixed({"instancesSet": {}, "filterSet": {}})),
    Api(_EC2, "DescribeSecurityGroups", True, 2, _fixed({"securityGroupSet": {},
                                                         "filterSet": {}})),
    Api(_EC2, "DescribeVolumes", True, 2, _fixed({"volumeSet": {}, "filterSet": {}})),
    Api(_EC2, "DescribeVpcs", True, 1, _fixed({"vpcSet": {}, "filterSet": {}})),
    Api(_IAM, "GetUser", True, 1, _named("userName", "users"), region=_G),
    Api(_IAM, "ListRoles", True, 2, region=_G),
    Api(_IAM, "GetRole", True, 2, _named("roleName", "roles"), region=_G),
    Api(_IAM, "ListAttachedRolePolicies", True, 1, _named("roleName", "roles"), region=_G),
    Api(_STS, "GetCallerIdentity", True, 3),
    Api(_STS, "AssumeRole", True, 4, _assume_role),
    Api(_KMS, "Decrypt", True, 8, _kms),
    Api(_KMS, "GenerateDataKey", True, 4, _kms),
    Api(_KMS, "DescribeKey", True, 2, _kms),
    Api(_KMS, "ListAliases", True, 1),
    Api(_CT, "DescribeTrails", True, 1, _fixed({"trailNameList": [],
                                                "includeShadowTrails": True})),
    Api(_CT, "GetTrailStatus", True, 1, _trail),
    Api(_CT, "LookupEvents", True, 1, _fixed({"maxResults": 50})),
    Api(_LAMBDA, "ListFunctions20150331", True, 1),
    Api(_LAMBDA, "GetFunction20150331v2", True, 1, _named("functionName", "functions")),
    Api(_DDB, "GetItem", True, 6, _table, data=True),
    Api(_DDB, "Query", True, 4, _table, data=True),
    Api(_DDB, "DescribeTable", True, 2, _named("tableName", "tables")),
    Api(_DDB, "ListTables", True, 1, _fixed({"limit": 100})),
)
HUMAN_WRITES: tuple[Api, ...] = (
    Api(_S3, "PutObject", False, 8, _s3_object, data=True),
    Api(_S3, "DeleteObject", False, 1, _s3_object, data=True),
    Api(_EC2, "CreateTags", False, 2, _instances),
    Api(_EC2, "RunInstances", False, 1, _run_instances),
    Api(_EC2, "StartInstances", False, 1, _instances),
    Api(_EC2, "StopInstances", False, 1, _instances),
    Api(_KMS, "Encrypt", False, 2, _kms),
    Api(_LAMBDA, "Invoke", False, 4, _invoke, data=True),
    Api(_DDB, "PutItem", False, 6, _table, data=True),
    Api(_DDB, "UpdateItem", False, 3, _table, data=True),
    Api(_DDB, "DeleteItem", False, 1, _table, data=True),
    Api("signin.amazonaws.com", "ConsoleLogin", False, 1, _console_login, region=_G,
        event_type="AwsConsoleSignIn"),
)
ROOT_READS: tuple[Api, ...] = (
    Api(_IAM, "GetAccountSummary", True, 1, region=_G),
    Api(_IAM, "ListUsers", True, 1, region=_G),
    Api(_EC2, "DescribeInstances", True, 1, _fixed({"instancesSet": {}, "filterSet": {}})),
)
ROOT_WRITES: tuple[Api, ...] = (HUMAN_WRITES[-1],)
SERVICE_READS: tuple[Api, ...] = (
    Api(_STS, "AssumeRole", True, 4, _assume_role),
    Api(_KMS, "Decrypt", True, 4, _kms),
    Api(_KMS, "GenerateDataKey", True, 2, _kms),
)
SERVICE_WRITES: tuple[Api, ...] = (
    Api(_KMS, "RotateKey", False, 1, _kms_service, event_type="AwsServiceEvent"),
    Api(_KMS, "Encrypt", False, 2, _kms),
)

_DENIED = {_EC2: "Client.UnauthorizedOperation", _KMS: "AccessDeniedException",
           _LAMBDA: "AccessDeniedException", _DDB: "AccessDeniedException",
           _CT: "AccessDeniedException"}
_OTHER = {
    _S3: ("NoSuchKey", "The specified key does not exist."),
    _EC2: ("Client.RequestLimitExceeded", "Request limit exceeded."),
    _IAM: ("NoSuchEntity", "The requested entity cannot be found."),
    _STS: ("ExpiredTokenException", "The security token included in the request is expired"),
    _DDB: ("ResourceNotFoundException", "Requested resource not found"),
    _LAMBDA: ("ResourceNotFoundException", "Function not found"),
    _CT: ("TrailNotFoundException", "Unknown trail for this account."),
}


def iam_action(api: Api) -> str:
    """The IAM action of a call, e.g. ``lambda:GetFunction`` for ``GetFunction20150331v2``."""
    name = api.name.split("20", 1)[0] if api.source == _LAMBDA else api.name
    name = "InvokeFunction" if name == "Invoke" else name
    return f"{api.source.split('.', 1)[0]}:{name}"


def denied_message(who: str, action: str, resource: str = "*") -> str:
    """The errorMessage AWS writes for an implicit IAM deny."""
    return (f"User: {who} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action")


def error_for(rng: random.Random, api: Api, p: Principal) -> tuple[str, str]:
    """A realistic ``(errorCode, errorMessage)`` for a failed ``api`` call by ``p``: 60% an
    authorization failure, else a service-specific error (throttling when none is listed)."""
    if rng.random() < 0.6:
        return _DENIED.get(api.source, "AccessDenied"), denied_message(p.arn or p.name,
                                                                        iam_action(api))
    return _OTHER.get(api.source, ("ThrottlingException", "Rate exceeded"))
