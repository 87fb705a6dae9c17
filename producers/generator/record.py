"""Record assembly for the synthetic generator: the world (accounts, callers, resources) and
:class:`Env`, which turns one call into a CloudTrail-shaped JSON-compatible ``dict``."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from producers.generator.base import (
    ATTACK_AGENTS,
    Principal,
    account_ids,
    identity,
    iso_time,
    make_principals,
    new_uuid,
)
from producers.generator.catalog import VERSIONS, Api, Params, Resources, make_resources

Step = Callable[[int], dict[str, Any]]
"""One injected event: called once with the event time (epoch ms), returns the record."""

_FAILED_LOGIN = "Failed authentication"
_SERVICE_EVENT_IDENTITY = "AWS Internal"


@dataclass(frozen=True, slots=True)
class Account:
    """One simulated AWS account: its id, weighted callers and named resources."""

    id: str
    principals: tuple[tuple[Principal, float], ...]
    res: Resources

    def pick(self, rng: random.Random, kind: str) -> Principal:
        """A random caller of this account with ``userIdentity.type == kind``."""
        return rng.choice([p for p, _ in self.principals if p.kind == kind])


def build_world(rng: random.Random, accounts: int) -> tuple[Account, ...]:
    """``accounts`` accounts with deterministic ids, callers and resources drawn from ``rng``."""
    out = []
    for acct in account_ids(rng, accounts):
        principals = tuple(make_principals(rng, acct))
        roles = tuple(p.name for p, _ in principals if p.kind == "AssumedRole")
        users = tuple(p.name for p, _ in principals if p.kind == "IAMUser")
        out.append(Account(acct, principals, make_resources(rng, acct, roles, users)))
    return tuple(out)


class Env:
    """The generator's state shared with scenario builders: the seeded ``rng``, the accounts
    and the region names. All randomness of a run flows through ``rng``."""

    def __init__(self, rng: random.Random, accounts: tuple[Account, ...],
                 regions: tuple[str, ...]) -> None:
        self.rng = rng
        self.accounts = accounts
        self.regions = regions

    def region(self, api: Api) -> str:
        """The region a call lands in: the pinned one for global services, else a random one."""
        return api.region or self.regions[self.rng.randrange(len(self.regions))]

    def attacker(self, account: Account, kind: str) -> Principal:
        """A compromised caller of ``kind`` in ``account``: a real identity used from
        203.0.113.0/24 (never used by benign traffic) with an offensive-tooling user agent."""
        p = account.pick(self.rng, kind)
        return replace(p, ip=f"203.0.113.{self.rng.randint(1, 254)}",
                       agent=self.rng.choice(ATTACK_AGENTS))

    def step(self, p: Principal, api: Api, region: str, req: Any = None, resp: Any = None,
             resources: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None,
             error: tuple[str, str] | None = None) -> Step:
        """A :data:`Step` emitting ``api`` called by ``p`` with fixed parameters."""
        return lambda t: self.record(p, api, t, region, (req, resp, resources, extra), error)

    def record(self, p: Principal, api: Api, now_ms: int, region: str, params: Params,
               error: tuple[str, str] | None = None) -> dict[str, Any]:
        """Assemble one record in CloudTrail's field order.

        ``error`` is ``(errorCode, errorMessage)``; a failed call has null responseElements,
        except ConsoleLogin, which (like AWS) reports ``Failure`` and no errorCode."""
        req, resp, resources, extra = params
        ident, ip, agent = _caller(p, api, now_ms)
        rec: dict[str, Any] = {
            "eventVersion": VERSIONS.get(api.source, "1.08"), "userIdentity": ident,
            "eventTime": iso_time(now_ms), "eventSource": api.source, "eventName": api.name,
            "awsRegion": region, "sourceIPAddress": ip, "userAgent": agent}
        if error is not None:
            if api.name == "ConsoleLogin":
                rec["errorMessage"], resp = _FAILED_LOGIN, {"ConsoleLogin": "Failure"}
            else:
                rec["errorCode"], rec["errorMessage"], resp = error[0], error[1], None
        rec["requestParameters"] = req
        rec["responseElements"] = resp
        if extra:
            rec.update(extra)
        if api.event_type == "AwsApiCall":
            rec["requestID"] = (f"{self.rng.getrandbits(64):016X}" if api.source[:3] == "s3."
                                else new_uuid(self.rng))
        rec["eventID"] = new_uuid(self.rng)
        rec["readOnly"] = api.read_only
        if resources:
            rec["resources"] = resources
        rec["eventType"] = api.event_type
        rec["managementEvent"] = not api.data
        rec["recipientAccountId"] = p.account
        rec["eventCategory"] = "Data" if api.data else "Management"
        if p.kind != "AWSService":
            rec["tlsDetails"] = {"tlsVersion": p.tls[0], "cipherSuite": p.tls[1],
                                 "clientProvidedHostHeader": _host(api.source, region)}
        return rec


def _caller(p: Principal, api: Api, now_ms: int) -> tuple[dict[str, Any], str, str]:
    """userIdentity, sourceIPAddress and userAgent: service events come from "AWS Internal";
    console sign-ins and root (console) activity use the caller's browser."""
    if api.event_type == "AwsServiceEvent":
        ident = {"accountId": p.account, "invokedBy": _SERVICE_EVENT_IDENTITY}
        return ident, _SERVICE_EVENT_IDENTITY, _SERVICE_EVENT_IDENTITY
    console = (api.event_type == "AwsConsoleSignIn" or p.kind == "Root") and p.kind != "AWSService"
    return identity(p, now_ms), p.ip, p.browser if console else p.agent


@functools.lru_cache(maxsize=1024)
def _host(source: str, region: str) -> str:
    svc = source.split(".", 1)[0]
    return {"iam": "iam.amazonaws.com", "signin": "signin.aws.amazon.com"}.get(
        svc, f"{svc}.{region}.amazonaws.com")
