"""A security group ingress rule that lets the whole internet (0.0.0.0/0 or ::/0) reach an
administration or database port, or every port."""

from __future__ import annotations

from typing import Any

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import WORLD_CIDRS, listed, request

SENSITIVE_PORTS = frozenset({
    22, 23, 3389, 5985, 5986, 5900,  # SSH, telnet, RDP, WinRM, VNC
    1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017,  # databases and caches
})


def _open_to_world(perm: Any) -> bool:
    ranges = [r.get("cidrIp") for r in listed(perm.get("ipRanges"))] + [
        r.get("cidrIpv6") for r in listed(perm.get("ipv6Ranges"))]
    return any(str(cidr) in WORLD_CIDRS for cidr in ranges)


def _exposed_ports(perm: Any) -> list[str]:
    """The sensitive ports a permission opens (``all`` for every port)."""
    if str(perm.get("ipProtocol", "")) in ("-1", "all"):
        return ["all"]
    try:
        low, high = int(perm.get("fromPort")), int(perm.get("toPort"))
    except (TypeError, ValueError):
        return []
    if low <= 0 and high >= 65535:
        return ["all"]
    return [str(p) for p in sorted(SENSITIVE_PORTS) if low <= p <= high]


def _findings(event: CloudTrailEvent) -> list[str]:
    perms = [p for p in listed(request(event, "ipPermissions")) if isinstance(p, CloudTrailEvent)]
    return [port for p in perms if _open_to_world(p) for port in _exposed_ports(p)]


def detect(event: CloudTrailEvent) -> bool:
    return succeeded(event) and bool(_findings(event))


def _group(event: CloudTrailEvent) -> str:
    return str(request(event, "groupId") or request(event, "groupName") or "?")


def title(event: CloudTrailEvent) -> str:
    ports = ", ".join(_findings(event))
    return f"Security group {_group(event)} opened to the internet on port(s) {ports}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{event.get('awsRegion')}|{_group(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "groupId": _group(event),
            "ports": ",".join(_findings(event))}
