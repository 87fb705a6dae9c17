"""Building blocks of the synthetic CloudTrail generator: ids, times, principals.

Everything here is pure: randomness comes only from the ``random.Random`` passed in, and times
only from the ``now_ms`` passed in (never the wall clock), so callers get deterministic output.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from typing import Any

REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
    "ap-northeast-2", "ap-south-1", "ca-central-1", "sa-east-1", "me-central-1", "af-south-1",
)
"""Real AWS region names. ``us-east-1`` is first: global services (IAM, sign-in) log there."""

HOUR_MS = 3_600_000
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HUMANS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
           "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter")
_BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
)
_CLIS = (
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe prompt/off",
    "aws-cli/2.13.5 Python/3.11.4 Darwin/23.4.0 exe/x86_64 prompt/off",
)
_SDKS = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.51.4",
    "aws-sdk-java/2.25.16 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) "
    "terraform-provider-aws/5.42.0",
)
ATTACK_AGENTS: tuple[str, ...] = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off",
    "Boto3/1.34.69 Python/3.11.8 Linux/6.6.9-kali1-amd64 Botocore/1.34.69",
    "aws-sdk-go/1.44.0 (go1.20.3; linux; amd64)",
)
_TLS = (("TLSv1.3", "TLS_AES_128_GCM_SHA256"), ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"))


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic for a seeded ``rng``)."""
    b = (rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (4 << 76) | (0x2 << 62)
    h = f"{b:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def key_id(rng: random.Random, prefix: str) -> str:
    """An AWS-style unique id such as ``AIDA...``/``AKIA...``: prefix + 16 base32 characters."""
    return prefix + "".join(rng.choice(_B32) for _ in range(16))


def hex_id(rng: random.Random, prefix: str, n: int = 17) -> str:
    """A resource id such as ``i-0abc...`` / ``sg-...``: prefix + ``n`` lowercase hex digits."""
    return prefix + f"{rng.getrandbits(4 * n):0{n}x}"


@functools.lru_cache(maxsize=8192)
def _iso_s(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


def iso_time(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, second precision) for epoch milliseconds ``ms``."""
    return _iso_s(ms // 1000)


def aws_date(ms: int) -> str:
    """The ``Mon D, YYYY H:MM:SS AM`` form AWS uses inside response elements."""
    t = time.gmtime(ms // 1000)
    hour = t.tm_hour % 12 or 12
    ampm = "AM" if t.tm_hour < 12 else "PM"
    return (f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} "
            f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm}")


def account_ids(rng: random.Random, n: int) -> tuple[str, ...]:
    """``n`` distinct 12-digit account ids (no leading zero)."""
    return tuple(str(a) for a in rng.sample(range(10**11, 10**12), n))


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller. ``kind`` is the CloudTrail ``userIdentity.type``; ``name`` is the user name,
    role name (AssumedRole), federated name, ``root``, or service host (AWSService)."""

    kind: str
    account: str
    name: str
    arn: str = ""
    principal_id: str = ""
    access_key: str = ""
    issuer_id: str = ""
    issuer_arn: str = ""
    issuer_name: str = ""
    ip: str = ""
    agent: str = ""
    browser: str = ""
    tls: tuple[str, str] = _TLS[0]
    mfa: bool = True


def identity(p: Principal, now_ms: int) -> dict[str, Any]:
    """A fresh ``userIdentity`` object for ``p`` (sessions are dated to the start of the hour)."""
    if p.kind == "AWSService":
        return {"type": "AWSService", "invokedBy": p.name}
    ident: dict[str, Any] = {"type": p.kind, "principalId": p.principal_id, "arn": p.arn,
                             "accountId": p.account, "accessKeyId": p.access_key}
    if p.kind == "IAMUser":
        ident["userName"] = p.name
    elif p.kind in ("AssumedRole", "FederatedUser"):
        ident["sessionContext"] = {
            "sessionIssuer": {"type": "Role" if p.kind == "AssumedRole" else "IAMUser",
                              "principalId": p.issuer_id, "arn": p.issuer_arn,
                              "accountId": p.account, "userName": p.issuer_name},
            "webIdFederationData": {},
            "attributes": {"creationDate": iso_time(now_ms - now_ms % HOUR_MS),
                           "mfaAuthenticated": "true" if p.mfa else "false"},
        }
    return ident


def _human(rng: random.Random, acct: str, kind: str, name: str, **kw: Any) -> Principal:
    kw.setdefault("ip", f"{rng.choice(('192.0.2', '198.51.100'))}.{rng.randint(1, 254)}")
    kw.setdefault("agent", rng.choice(_CLIS + _SDKS))
    return Principal(kind, acct, name, browser=rng.choice(_BROWSERS), tls=rng.choice(_TLS), **kw)


def _role(rng: random.Random, acct: str, role: str, session: str, **kw: Any) -> Principal:
    rid = key_id(rng, "AROA")
    return _human(rng, acct, "AssumedRole", role, arn=f"arn:aws:sts::{acct}:assumed-role/"
                  f"{role}/{session}", principal_id=f"{rid}:{session}",
                  access_key=key_id(rng, "ASIA"), issuer_id=rid, issuer_name=role,
                  issuer_arn=f"arn:aws:iam::{acct}:role/{role}", **kw)


def make_principals(rng: random.Random, acct: str) -> list[tuple[Principal, float]]:
    """The callers of one account with their relative activity weights (roles dominate,
    services ~12%, root is rare). Human callers use 192.0.2.0/24 and 198.51.100.0/24 only."""
    users = rng.sample(_HUMANS, 4)
    out: list[tuple[Principal, float]] = [
        (_human(rng, acct, "IAMUser", u, arn=f"arn:aws:iam::{acct}:user/{u}",
                principal_id=key_id(rng, "AIDA"), access_key=key_id(rng, "AKIA")), 8.0)
        for u in users[:3]]
    sso = rng.getrandbits(40)
    out += [
        (_role(rng, acct, f"AWSReservedSSO_AdministratorAccess_{sso:010x}",
               f"{users[0]}@example.com", mfa=False), 6.0),
        (_role(rng, acct, f"AWSReservedSSO_ReadOnly_{sso:010x}", f"{users[3]}@example.com",
               mfa=False), 8.0),
        (_role(rng, acct, "app-backend-role", f"botocore-session-{rng.randrange(10**10)}",
               agent=_SDKS[0]), 15.0),
        (_role(rng, acct, "ec2-instance-role", hex_id(rng, "i-0", 16), agent=_SDKS[2]), 10.0),
        (_role(rng, acct, "lambda-exec-role", "api-handler", agent=_SDKS[1]), 10.0),
        (_role(rng, acct, "github-actions-deploy", "GitHubActions", agent=_SDKS[3]), 5.0),
    ]
    fed = f"fed-{users[1]}"
    out.append((_human(rng, acct, "FederatedUser", fed, arn=f"arn:aws:sts::{acct}:federated-user/"
                       f"{fed}", principal_id=f"{acct}:{fed}", access_key=key_id(rng, "ASIA"),
                       issuer_id=key_id(rng, "AIDA"), issuer_name="federation-broker",
                       issuer_arn=f"arn:aws:iam::{acct}:user/federation-broker"), 5.0))
    out.append((_human(rng, acct, "Root", "root", arn=f"arn:aws:iam::{acct}:root",
                       principal_id=acct, agent="AWS Internal"), 0.2))
    for host, weight in (("ec2.amazonaws.com", 4.0), ("lambda.amazonaws.com", 4.0),
                         ("s3.amazonaws.com", 4.0)):
        out.append((Principal("AWSService", acct, host, ip=host, agent=host), weight))
    return out
