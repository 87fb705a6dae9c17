"""Signed, chained integrity digests of the lake: records, chain, verification."""
