"""A Lambda function's code replaced, or layers added to its configuration, by a person
(IAM user, federated user, root or an IAM Identity Center session) rather than by the
deployment pipeline's role. Layers run before the handler: a quiet persistence spot."""

from __future__ import annotations

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import actor_name, aws_context, succeeded
from pipeline.rules.pack.native._resources import human_caller, named, response


def _layers(event: CloudTrailEvent) -> list[str]:
    layers = response(event, "layers")
    return [str(layer.get("arn")) for layer in layers or []
            if isinstance(layer, CloudTrailEvent)]


def detect(event: CloudTrailEvent) -> bool:
    if not (succeeded(event) and human_caller(event)):
        return False
    if str(event.get("eventName") or "").startswith("UpdateFunctionCode"):
        return True
    return bool(_layers(event))


def title(event: CloudTrailEvent) -> str:
    what = "code" if str(event.get("eventName")).startswith("UpdateFunctionCode") else "layers"
    return f"Lambda {named(event, 'functionName')} {what} changed by {actor_name(event)}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "function": named(event, "functionName"),
            "layers": ",".join(_layers(event))}
