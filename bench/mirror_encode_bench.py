"""Micro-benchmark: Avro batch tables -> CloudTrail JSON (:mod:`pipeline.mirror.json`), no Kafka.

``python -m bench.mirror_encode_bench [N]`` generates N events with the deterministic generator,
encodes them as our single-object messages, decodes them with the real batch decoder in
poll-sized batches (as the mirror gets them) and times :func:`cloudtrail_json` on those tables,
then the decoder and the encoder together. Rates are rows per second of CPU time of this
process (all of its threads) and of wall time, the best of a few runs.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.decode_bench import BATCH, _best, messages
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.schemas import default_registry
from pipeline.mirror.json import cloudtrail_json


def measure(n: int = 100_000, batch: int = BATCH, repeat: int = 3) -> dict[str, Any]:
    """Rows/s of the JSON encoder alone and of decoder + encoder (batches of ``batch``)."""
    msgs = messages(n)
    decoder = AvroBatchDecoder(reader=default_registry().newest())
    chunks = [msgs[k:k + batch] for k in range(0, n, batch)]
    tables = [decoder(chunk).table for chunk in chunks]

    def encode() -> None:
        for table in tables:
            assert len(cloudtrail_json(table)) == table.num_rows

    def both() -> None:
        for chunk in chunks:
            cloudtrail_json(decoder(chunk).table)

    encode()  # warm up
    cpu, wall = _best(encode, repeat)
    both_cpu, both_wall = _best(both, repeat)
    return {"events": n, "batch": batch,
            "json_rows_per_s_cpu": round(n / cpu), "json_rows_per_s_wall": round(n / wall),
            "decode_json_rows_per_s_cpu": round(n / both_cpu),
            "decode_json_rows_per_s_wall": round(n / both_wall)}


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 100_000
    for key, value in measure(n).items():
        print(f"{key:>28}: {value:,}")


if __name__ == "__main__":
    main(sys.argv[1:])
