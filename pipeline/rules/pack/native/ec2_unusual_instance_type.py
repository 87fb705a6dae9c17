"""Instances of a GPU, machine-learning or FPGA family launched (or attempted): the
favourite of cryptominers on stolen credentials, and rarely part of ordinary fleets."""

from __future__ import annotations

import re

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, error_code
from pipeline.rules.pack.native._resources import request

# Accelerated-computing families: p (GPU), g (graphics GPU), inf/trn (ML chips),
# dl (Gaudi), f (FPGA), vt (video transcoding).
_UNUSUAL = re.compile(r"^(p\d|g\d|inf\d|trn\d|dl\d|f\d|vt\d)[a-z0-9-]*\.")


def _instance_type(event: CloudTrailEvent) -> str:
    value = request(event, "instanceType")
    if isinstance(value, CloudTrailEvent):
        value = value.get("value")
    return str(value or "")


def detect(event: CloudTrailEvent) -> bool:
    # Denied launches count: they show the intent; dry runs do not.
    return "DryRun" not in error_code(event) and bool(_UNUSUAL.match(_instance_type(event)))


def title(event: CloudTrailEvent) -> str:
    return f"Accelerated EC2 instance type {_instance_type(event)} launched"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "instanceType": _instance_type(event)}
