"""An object uploaded whose file name looks like a ransom note (``HOW_TO_DECRYPT``,
``RANSOM``, ``YOUR_FILES_ARE_ENCRYPTED``, ``README_TO_RESTORE``...)."""

from __future__ import annotations

import re

from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.helpers import account, aws_context, succeeded
from pipeline.rules.pack.native._resources import named

# Matched against the file name (not the path), lower-cased, separators normalised to "_".
_NOTE = re.compile(
    r"ransom|how_?to_?(decrypt|recover|restore|unlock|get_?back)|decrypt_?(instructions|files)"
    r"|(files|data)_?(are_?|were_?)?encrypted|read_?me_?(to|for)_?(decrypt|restore|recover)"
    r"|restore_?(my_?)?files|recover_?(your_?)?files|!+_?read_?me")


def _file_name(event: CloudTrailEvent) -> str:
    return named(event, "key").rsplit("/", 1)[-1]


def detect(event: CloudTrailEvent) -> bool:
    name = re.sub(r"[\s\-.]+", "_", _file_name(event).lower())
    return succeeded(event) and bool(_NOTE.search(name))


def title(event: CloudTrailEvent) -> str:
    return f"Possible ransom note {_file_name(event)} uploaded to {named(event, 'bucketName')}"


def dedup(event: CloudTrailEvent) -> str:
    return f"{account(event)}|{named(event, 'bucketName')}"


def alert_context(event: CloudTrailEvent) -> dict[str, str]:
    return {**aws_context(event), "bucket": named(event, "bucketName"),
            "key": named(event, "key")}
