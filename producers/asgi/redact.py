"""Secret redaction for :mod:`producers.asgi.middleware`. Pure, no I/O.

**Rule** (:func:`redact`): a member whose key, lower-cased and with ``-``, ``_``, ``.``
and spaces removed, contains any fragment of ``secret_keys`` (normalised the same way) has its
value replaced by ``"***REDACTED***"``, at any depth, in lists too. Applies to
requestParameters, responseElements and the recorded request headers. Matching is by
substring, so it errs towards redacting (``tokenCount`` is redacted too). Members deeper than
:data:`MAX_DEPTH` become ``"***TRUNCATED***"``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

REDACTED = "***REDACTED***"
TRUNCATED = "***TRUNCATED***"
MAX_DEPTH = 32
DEFAULT_SECRET_KEYS: frozenset[str] = frozenset({
    "password", "passwd", "passphrase", "secret", "token", "authorization", "api_key",
    "apikey", "credential", "session", "cookie", "private_key", "signature",
})
"""Key fragments whose values are redacted; pass ``DEFAULT_SECRET_KEYS | {"ssn"}`` to extend."""


def redact(value: Any, secret_keys: Collection[str] = DEFAULT_SECRET_KEYS,
           depth: int = 0) -> Any:
    """A copy of ``value`` with secrets redacted (rule in the module docstring)."""
    if depth > MAX_DEPTH:
        return TRUNCATED
    if isinstance(value, Mapping):
        fragments = _fragments(secret_keys)
        return {k: REDACTED if is_secret(str(k), fragments) else redact(v, fragments, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secret_keys, depth + 1) for v in value]
    return value


def is_secret(key: str, secret_keys: Collection[str] = DEFAULT_SECRET_KEYS) -> bool:
    """Whether a member named ``key`` holds a secret (normalised substring match)."""
    norm = _normalise(key)
    return any(f and f in norm for f in _fragments(secret_keys))


def _fragments(secret_keys: Collection[str]) -> frozenset[str]:
    if isinstance(secret_keys, _Normalised):
        return secret_keys
    return _Normalised(_normalise(k) for k in secret_keys)


class _Normalised(frozenset[str]):
    """Fragments already normalised (saves work while recursing)."""


_SEPARATORS = re.compile(r"[-_.\s]")


def _normalise(key: str) -> str:
    return _SEPARATORS.sub("", key.lower())
