"""The digester daemon: delivery notices in, one signed, chained digest per period out.

Reads ``audit.deliveries.v1`` (Delivery and Compaction notices, see
:mod:`pipeline.lake.digest.model`) and holds each notice with the time it was delivered. The
period is ``[digest] period_ms`` (1 h by default, down to 1 min; see
:mod:`pipeline.lake.digest.period`). When wall-clock passes a period's end + ``close_grace_ms``
and the consumer has caught up, ``tick`` emits that period's digest (also for periods with no
deliveries, every period in order) and the sink writes it with ``if_none_match``, so a digest
is never silently replaced. A new digest always starts where the chain head ends, so a change
of period (between runs) continues the chain: the first digest under the new period runs to
that period's next boundary.

Offsets: ``pending_low_offsets`` reports the oldest held notice per partition, so the Runner
commits nothing that is not in a durable digest yet. Restart-safe: on start, and after every
``drop`` (revoke, or a failed flush the Runner rewinds), the chain head is re-read from the
lake and digests are continued from it; notices re-read after a crash that a recent digest
already lists (same key and SHA-256) are skipped. A notice whose period is already closed goes
into the first period still open.

Run exactly one digester per lake, on a deliveries topic with one partition (or one member
in the group): each digest must see every notice of its period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.daemon import Context, Parts
from pipeline.lake.digest.chain import ChainError, Listings, find_head, recent_listings
from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import (
    Compaction,
    CompactionEntry,
    ObjectEntry,
    SignedDigest,
    build_digest,
    parse_notice,
)
from pipeline.lake.digest.period import period_end, period_floor
from pipeline.lake.keys import SigningKeyError, load_private_key, load_public_key, trusted_keys
from pipeline.lake.layout import DIGESTS_DIR, HOUR_MS
from pipeline.lake.store import ObjectStore, PreconditionFailed, StoreError
from pipeline.logs import get_logger
from pipeline.model import Event, SinkBase, TopicPartitionKey

log = get_logger("consumers.digester")

Clock = Callable[[int], int]
ERROR_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class _Held:
    at_ms: int  # when it was delivered (or compacted)
    item: ObjectEntry | CompactionEntry
    tp: TopicPartitionKey
    offset: int


class DigestProcessor:
    """Holds notices by delivery time; ``tick`` emits :class:`SignedDigest` outputs.

    ``clock`` maps the Runner's wall-clock ms to the time used to close periods and sign
    (tests move it ahead); ``trusted`` are the keys the chain head may be signed with.
    """

    def __init__(self, store: ObjectStore, signer: Ed25519PrivateKey, cfg: DigestConfig, *,
                 trusted: Mapping[str, Ed25519PublicKey], batch_size: int,
                 clock: Clock | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store, self._signer, self._cfg = store, signer, cfg
        self._trusted, self._batch_size = trusted, batch_size
        self._clock: Clock = clock or (lambda ms: ms)
        self._monotonic = monotonic
        self._started_s = monotonic()
        self._held: list[_Held] = []
        self._head: SignedDigest | None = None
        self._next_start: int | None = None
        self._listed = Listings()
        self._synced = False
        self._since_tick = 0
        self._records = 0
        self._foreign_lakes: set[str] = set()
        self._last_error_s = float("-inf")

    def process(self, event: Event) -> Iterable[Any]:
        """Hold one notice with its delivery time. Raises on a malformed notice (dead-lettered)."""
        self._since_tick += 1
        self._records += 1
        notice = parse_notice(event.raw if event.raw is not None else event.value)
        if notice.lake.rstrip("/") != self._store.url.rstrip("/"):
            if notice.lake not in self._foreign_lakes:
                self._foreign_lakes.add(notice.lake)
                log.warning("notice_for_other_lake_ignored", lake=notice.lake,
                            this_lake=self._store.url)
            return ()
        if isinstance(notice, Compaction):
            held = _Held(notice.compacted_at_ms, notice.entry, event.tp, event.offset)
        else:
            held = _Held(notice.delivered_at_ms, ObjectEntry.from_delivery(notice), event.tp,
                         event.offset)
        self._held.append(held)
        return ()

    def tick(self, now_ms: int) -> Iterable[Any]:
        """Digests of every period closed by now (at most ``max_digests_per_tick``), oldest
        first. Store errors while re-reading the chain are logged and retried next tick."""
        caught_up = self._since_tick < self._batch_size
        self._since_tick = 0
        now = self._clock(now_ms)
        if not caught_up or not self._settled() or not self._sync(now):
            return []
        assert self._next_start is not None
        out: list[SignedDigest] = []
        period = self._cfg.period_ms
        while (period_end(self._next_start, period) + self._cfg.close_grace_ms <= now
               and len(out) < self._cfg.max_digests_per_tick):
            digest = self._close(self._next_start, now)
            out.append(digest)
            self._next_start = digest.end_ms
        if out:
            self._listed.prune(self._next_start - self._cfg.dedupe_lookback_hours * HOUR_MS)
        return out

    def pending_low_offsets(self) -> Mapping[TopicPartitionKey, int]:
        low: dict[TopicPartitionKey, int] = {}
        for h in self._held:
            if h.offset < low.get(h.tp, h.offset + 1):
                low[h.tp] = h.offset
        return low

    def drop(self, partitions: Collection[TopicPartitionKey]) -> None:
        """Forget held notices of ``partitions`` (they are re-read) and re-read the chain head
        before the next digest: a digest emitted but not flushed may have been discarded."""
        gone = set(partitions)
        self._held = [h for h in self._held if h.tp not in gone]
        self._synced = False

    def _settled(self) -> bool:
        if self._records:
            return True
        return (self._monotonic() - self._started_s) * 1000 >= self._cfg.startup_settle_ms

    def _sync(self, now: int) -> bool:
        """Make sure the chain head is known; False (logged) when the lake cannot tell yet."""
        if self._synced:
            return True
        try:
            head = find_head(self._store, now, self._trusted)
            listed = (recent_listings(self._store, head, self._cfg.dedupe_lookback_hours)
                      if head else Listings())
        except (StoreError, ChainError) as exc:
            if self._monotonic() - self._last_error_s >= ERROR_LOG_INTERVAL_S:
                self._last_error_s = self._monotonic()
                log.error("digest_chain_unavailable", error=str(exc),
                          error_type=type(exc).__name__, held_notices=len(self._held))
            return False
        self._head, self._listed, self._synced = head, listed, True
        if head is not None:  # whatever the head's period: no gap, no overlap
            self._next_start = head.end_ms
        else:  # a new chain starts at the period of the oldest notice held, or of now
            earlier = [] if self._next_start is None else [self._next_start]
            oldest = min([h.at_ms for h in self._held] + [now])
            self._next_start = min([period_floor(oldest, self._cfg.period_ms), *earlier])
        log.info("digest_chain_synced", head=head.key if head else None,
                 next_start=self._next_start, period_ms=self._cfg.period_ms)
        return True

    def _close(self, start: int, now: int) -> SignedDigest:
        """Build and sign the digest starting at ``start`` from every held notice delivered
        before its end (earlier ones are late notices of closed periods)."""
        end = period_end(start, self._cfg.period_ms)
        chosen = [h for h in self._held if h.at_ms < end]
        self._held = [h for h in self._held if h.at_ms >= end]
        latest: dict[str, ObjectEntry] = {}
        compactions: dict[CompactionEntry, None] = {}
        for h in chosen:  # arrival order: a later notice for the same key wins
            if isinstance(h.item, ObjectEntry):
                latest[h.item.key] = h.item
            elif (h.item.replaced, h.item.by) not in self._listed.compactions:
                compactions[h.item] = None
        objects = [o for o in latest.values() if not self._listed.lists(o.key, o.sha256)]
        digest = build_digest(start, period_ms=self._cfg.period_ms, lake=self._store.url,
                              previous=self._head.link if self._head else None,
                              objects=objects, compactions=list(compactions),
                              signer=self._signer, signed_at_ms=now)
        self._listed.add(digest)
        self._head = digest
        return digest


class DigestConflict(StoreError):
    """Another writer put a different digest at the same key."""


class DigestSink(SinkBase):
    """Writes digests in order with ``if_none_match``. A digest that already exists with the
    same bytes counts as written (a retried put); with other bytes flush raises
    :class:`DigestConflict` (the Runner rewinds, the processor re-reads the chain head)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._buffer: list[SignedDigest] = []
        self.written = 0

    def add(self, item: Any, source: Event | None) -> None:
        if not isinstance(item, SignedDigest):
            raise TypeError(f"DigestSink takes SignedDigest, not {type(item).__name__}")
        self._buffer.append(item)

    def should_flush(self, now_ms: int) -> bool:
        return bool(self._buffer)

    def flush(self) -> None:
        while self._buffer:
            digest = self._buffer[0]
            try:
                self._store.put(digest.key, digest.body, if_none_match=True)
            except PreconditionFailed as exc:
                if self._store.get(digest.key) != digest.body:
                    raise DigestConflict(f"{digest.key} exists with other content") from exc
            self._buffer.pop(0)
            self.written += 1
            log.info("digest_written", key=digest.key, objects=len(digest.doc["objects"]),
                     compactions=len(digest.doc["compactions"]))

    def discard(self) -> None:
        self._buffer.clear()

    def healthcheck(self) -> bool:
        """Startup check that the lake answers (a HEAD under ``digests/``); logs and returns
        False otherwise."""
        try:
            self._store.head(f"{DIGESTS_DIR}/")
        except Exception as exc:
            log.error("lake_unreachable", lake=self._store.url, error=str(exc),
                      error_type=type(exc).__name__)
            return False
        return True


def wire(ctx: Context) -> Parts:
    """The digester's parts for the one daemon builder: its processor and sink on
    ``topics.deliveries`` in group ``digest.group``. The lake comes from ``[storage]`` (or the
    ``store`` hook), the signing key from ``[digest]``; hooks ``clock`` move time in tests.
    Raises ValueError (SigningKeyError) when no usable private key is configured, or when no
    configured key verifies the chain head (see :func:`_check_head`)."""
    cfg, dcfg = ctx.cfg, ctx.cfg.digest
    if dcfg.private_key is None:
        raise SigningKeyError("digest.private_key is not configured (create one with "
                              "`trailpipe lake keygen --out PATH`)")
    store = ctx.lake("digester")  # probed: a lake that denies the digester refuses the start
    signer = load_private_key(dcfg.private_key.get_secret_value())
    trusted = trusted_keys([*(load_public_key(v) for v in dcfg.trusted_public_keys),
                            signer.public_key()])
    clock: Clock = ctx.hooks.get("clock") or (lambda ms: ms)
    _check_head(store, trusted, clock(time.time_ns() // 1_000_000))
    processor = DigestProcessor(store, signer, dcfg, trusted=trusted,
                                batch_size=cfg.runner.batch_size, clock=clock)
    sink = DigestSink(store)
    return Parts(topics=[cfg.topics.deliveries], group=dcfg.group, processor=processor,
                 sink=sink, summary=lambda: {"lake": store.url, "digests_written": sink.written})


def _check_head(store: ObjectStore, trusted: Mapping[str, Ed25519PublicKey], now_ms: int) -> None:
    """Refuse to start when the chain head is not signed by a configured key (a key rotated
    without ``[digest] trusted_public_keys``) or is unreadable: the digester would otherwise
    run, log it once a minute and never write a digest. A lake that does not answer is left
    to the run (it may come back). Raises SigningKeyError."""
    try:
        find_head(store, now_ms, trusted)
    except ChainError as exc:
        raise SigningKeyError(f"the digest chain cannot be continued: {exc}") from exc
    except StoreError as exc:
        log.warning("digest_head_unchecked", lake=store.url, error=str(exc),
                    error_type=type(exc).__name__)
