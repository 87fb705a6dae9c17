"""An RDS instance or cluster made reachable from the internet: modified to be publicly
accessible, or restored from a snapshot as a public instance (a common way to read a
copied database from outside)."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import aws_context, succeeded
from pipeline.rules.pack.native._resources import from_service, named, request, response

_MODIFY = frozenset({"ModifyDBInstance", "ModifyDBCluster"})


def detect(event: CloudTrailEvent) -> bool:
    if not (succeeded(event) and from_service(event, "rds")):
        return False
    if request(event, "publiclyAccessible") is True:
        return True
    # A restore may take the setting from the snapshot: the response tells what was built.
    return event.get("eventName") not in _MODIFY and response(event, "publiclyAccessible") is True


def _db(event: CloudTrailEvent) -> str:
    return named(event, "dBInstanceIdentifier", "dBClusterIdentifier")


def title(event: CloudTrailEvent) -> str:
    return f"RDS {_db(event)} made publicly accessible ({event.get('eventName')})"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "db": _db(event)}
