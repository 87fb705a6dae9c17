"""Who a traffic shape's injected calls come from, and what a shape reports it did.

:class:`Caller` builds marked records of one principal calling one write management API
(:data:`WRITE_APIS`) in one account and region; :class:`Truth` is a shape's ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from producers.generator.base import Principal, aws_date, key_id
from producers.generator.catalog import HUMAN_WRITES, Api, Params, Resources, denied_message
from producers.generator.catalog import iam_action as _iam_action
from producers.generator.engine import Generator
from producers.generator.record import Account, Env
from producers.generator.scenarios import mark

Record = dict[str, Any]


def _create_access_key(rng: random.Random, res: Resources, region: str, p: Principal,
                       t: int) -> Params:
    user = rng.choice(res.users)
    return ({"userName": user}, {"accessKey": {"userName": user, "status": "Active",
                                               "accessKeyId": key_id(rng, "AKIA"),
                                               "createDate": aws_date(t)}}, None, None)


def _put_parameter(rng: random.Random, res: Resources, region: str, p: Principal,
                   t: int) -> Params:
    name = f"/{rng.choice(('app', 'deploy', 'ops'))}/config/{rng.choice(('db', 'flags'))}"
    return ({"name": name, "type": "String", "overwrite": True,
             "value": "HIDDEN_DUE_TO_SECURITY_REASONS"},
            {"version": rng.randint(1, 500), "tier": "Standard"}, None, None)


WRITE_APIS: Mapping[str, Api] = {
    "ec2:RunInstances": next(a for a in HUMAN_WRITES if a.name == "RunInstances"),
    "iam:CreateAccessKey": Api("iam.amazonaws.com", "CreateAccessKey", False,
                               params=_create_access_key, region="us-east-1"),
    "ssm:PutParameter": Api("ssm.amazonaws.com", "PutParameter", False, params=_put_parameter),
}



def person(p: Principal) -> bool:
    """An IAM user or a role session (the rate spike's caller)."""
    return p.kind in ("IAMUser", "AssumedRole")


def workload(p: Principal) -> bool:
    """A workload's role session, not a person's SSO one (the error spike's caller)."""
    return p.kind == "AssumedRole" and not p.name.startswith("AWSReservedSSO")


@dataclass(frozen=True, slots=True)
class Truth:
    """What a shape did, in event time: ``[start_ms, end_ms)`` for (account, region); for the
    spikes also the API, the principal (ARN and user agent), the calls made in the window and,
    for the error spike, how many of them failed and with which ``error_code``."""

    shape: str
    account: str
    region: str
    start_ms: int
    end_ms: int
    event_source: str = ""
    event_name: str = ""
    principal_arn: str = ""
    user_agent: str = ""
    calls: int = 0
    errors: int = 0
    error_code: str = ""


def _message(code: str, p: Principal, api: Api) -> str:
    if "AccessDenied" in code or "Unauthorized" in code:
        return denied_message(p.arn or p.name, _iam_action(api))
    return "Rate exceeded" if "Throttl" in code else code


@dataclass(frozen=True, slots=True)
class Caller:
    """One principal calling one API in one account and region; ``env`` builds the records
    (its seeded rng draws every id and parameter)."""

    env: Env
    account: Account
    principal: Principal
    api: Api
    region: str

    def call(self, t: int, name: str, error_code: str | None = None) -> Record:
        """The call at event time ``t`` marked ``name``, failed with ``error_code`` if given."""
        p, api, rng = self.principal, self.api, self.env.rng
        params = api.build(rng, self.account.res, self.region, p, t)
        error = None if error_code is None else (error_code, _message(error_code, p, api))
        return mark(self.env.record(p, api, t, self.region, params, error), name)

    def truth(self, shape: str, start_ms: int, end_ms: int, calls: int, errors: int = 0,
              error_code: str = "") -> Truth:
        """The ground truth of a shape made of this caller's calls."""
        return Truth(shape, self.account.id, self.region, start_ms, end_ms, self.api.source,
                     self.api.name, self.principal.arn, self.principal.agent, calls, errors,
                     error_code)


def account_at(gen: Generator, offset: int) -> Account:
    """Account number ``offset`` after a seeded first one: the shapes use different accounts
    (0: rate spike, 1: error spike, 2: silence) when there are enough."""
    first = random.Random(f"trailpipe-shapes:{gen.seed}").randrange(len(gen.world))
    return gen.world[(first + offset) % len(gen.world)]


def make_caller(gen: Generator, offset: int, api_name: str,
                who: Callable[[Principal], bool], rng: random.Random) -> Caller:
    """A seeded caller: :func:`account_at` ``offset``, a principal ``who`` accepts, the API's
    region (a seeded one unless the API is pinned to one)."""
    account = account_at(gen, offset)
    principal = rng.choice([p for p, _ in account.principals if who(p)])
    api = WRITE_APIS[api_name]
    region = api.region or rng.choice(gen.region_names)
    return Caller(Env(rng, gen.world, gen.region_names), account, principal, api, region)

