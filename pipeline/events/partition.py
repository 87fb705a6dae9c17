"""Event keys and Kafka-compatible partitioning.

The key of an event is ``"<accountId>|<region>"`` (UTF-8), where accountId is
``recipientAccountId`` (the account whose log holds the event), else ``userIdentity.accountId``,
and region is ``awsRegion``. A part that is missing, null, empty or not a string is the empty
string: ``"|us-east-1"``, ``"123456789012|"``, ``"|"``. Such records are rare and land together,
deterministically, on the partition of that key (never a random one, so replay can still find
them). The key is only hashed; consumers read account and region from the event itself.

:func:`partition_for` is exactly Kafka's Java default partitioner for keyed records
(``BuiltInPartitioner.partitionForKey``: ``toPositive(Utils.murmur2(key)) % numPartitions``),
which librdkafka implements as ``partitioner=murmur2_random``; tested against values computed
by Kafka 4.4.0's own jar (``tests/unit/vectors/murmur2_kafka_4.4.0.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: 32-bit MurmurHash2, seed 0x9747b28c, as a signed Java int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rem = length & 3
    if rem:
        # Java's switch falls through: 3 -> 2 -> 1, then one multiply.
        h ^= int.from_bytes(data[tail:], "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``, which overflows)."""
    return n & 0x7FFFFFFF


def partition_for(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's Java producer (and librdkafka's murmur2_random) picks for ``key``."""
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be >= 1, got {num_partitions}")
    return to_positive(murmur2(key)) % num_partitions


def make_key(account: str | None, region: str | None) -> bytes:
    """``"<account>|<region>"`` as UTF-8; None means unknown (the empty string)."""
    return f"{_part(account)}|{_part(region)}".encode()


def event_key(record: Mapping[str, Any]) -> bytes:
    """The key of a CloudTrail record or an ApiCallEvent datum (both name the fields alike and
    give the same key, since a datum only holds well-typed values)."""
    account = _part(record.get("recipientAccountId"))
    if not account:
        identity = record.get("userIdentity")
        if isinstance(identity, Mapping):
            account = _part(identity.get("accountId"))
    return make_key(account, _part(record.get("awsRegion")))


def partition_for_account(account: str | None, region: str | None, num_partitions: int) -> int:
    """The single partition that holds ``account`` + ``region`` (for replay)."""
    return partition_for(make_key(account, region), num_partitions)


def _part(value: Any) -> str:
    # Lone surrogates cannot be UTF-8; the Avro datum drops such strings too, so treat as unknown.
    if type(value) is not str or not value:
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value
