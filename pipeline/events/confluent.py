"""Confluent Schema Registry wire format for ApiCallEvent datums (confluent-kafka's serializers).

A message is ``00`` + the 4-byte big-endian schema id the registry assigned + the Avro binary
body. Our own single-object encoding (:mod:`pipeline.events.wire`) starts with ``C3 01``, so the
first byte tells the two apart (:func:`is_confluent_framed`); consumers can accept both.

:class:`ConfluentCodec` wraps ``AvroSerializer``/``AvroDeserializer`` for one subject (default
``<topic>-value``, the TopicNameStrategy). It registers its writer schema (by default
``schemas/ApiCallEvent.v1.avsc``) on first use, or only looks it up with
``auto_register=False``. Needs ``confluent-kafka[avro,schemaregistry]``. A ``mock://`` URL gives
confluent-kafka's in-process mock registry (tests).

Errors: bad input raises the :mod:`pipeline.events.errors` types (InvalidDatum, BadMagicError,
TruncatedBodyError, UnknownSchemaError, CorruptBodyError, WireFormatError); an unreachable
registry or a rejected registration (e.g. 409, incompatible) raises :class:`RegistryError`,
which is not an input problem and must not send records to a dead-letter topic.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, ClassVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.read import SchemaResolutionError

from pipeline.config import SchemaRegistryConfig
from pipeline.events.errors import (
    BadMagicError,
    CorruptBodyError,
    InvalidDatum,
    TruncatedBodyError,
    UnknownSchemaError,
    WireFormatError,
)
from pipeline.events.schemas import API_CALL_EVENT, CURRENT_VERSION, default_registry
from pipeline.model import Unavailable

MAGIC_BYTE = 0
HEADER_LEN = 5
"""Magic byte + 4-byte big-endian schema id."""
VALUE_SUFFIX = "-value"


class RegistryError(Unavailable):
    """The schema registry could not be reached or refused a request (not a bad-input error)."""

    error_type: ClassVar[str] = "schema_registry"


def registry_client_conf(sr: SchemaRegistryConfig) -> dict[str, Any]:
    """The ``SchemaRegistryClient`` settings of ``[schema_registry]`` (url, basic auth)."""
    conf: dict[str, Any] = {"url": str(sr.url)}
    if sr.basic_auth_user_info is not None:
        conf["basic.auth.user.info"] = sr.basic_auth_user_info.get_secret_value()
    return conf


def is_confluent_framed(data: bytes) -> bool:
    """True if ``data`` starts like a Confluent-framed message: ``00`` + a 4-byte schema id.
    (Single-object encoded messages start with ``C3 01`` and are never taken for one.)"""
    return len(data) >= HEADER_LEN and data[0] == MAGIC_BYTE


def schema_id_of(data: bytes) -> int:
    """The registry schema id of a Confluent-framed message. Raises BadMagicError if the first
    byte is not ``00``, TruncatedBodyError if the 5-byte header is incomplete."""
    if not data[:1] or data[0] != MAGIC_BYTE:
        if not data:
            raise TruncatedBodyError("empty message has no Confluent header")
        raise BadMagicError(f"message starts with {data[:1].hex()}, not 00 (Confluent framing)")
    if len(data) < HEADER_LEN:
        raise TruncatedBodyError(f"message of {len(data)} bytes has no complete Confluent header")
    schema_id: int = struct.unpack(">I", data[1:HEADER_LEN])[0]
    return schema_id


def subject_for(topic: str) -> str:
    """The value subject of ``topic`` under the TopicNameStrategy: ``<topic>-value``."""
    return topic + VALUE_SUFFIX


def schema_text(version: str = CURRENT_VERSION, name: str = API_CALL_EVENT) -> str:
    """The text of a schema in ``schemas/`` (``"1"``, ``"1.1"``), as it is registered."""
    return default_registry().get(name, version).path.read_text(encoding="utf-8").strip()


class ConfluentCodec:
    """Encode and decode datums in the Confluent wire format against one registry subject.

    ``schema_str``: the writer schema (default: the current ApiCallEvent from ``schemas/``).
    ``topic``: goes into the SerializationContext (default: ``subject`` minus ``-value``).
    ``reader_schema_str``: decode into this schema (default: each message's writer schema).
    ``client_conf``: extra SchemaRegistryClient settings (``basic.auth.user.info``, ``timeout``,
    ``max.retries``, ...). Thread-safe as far as confluent-kafka's serde is.
    """

    def __init__(self, url: str, subject: str, schema_str: str | None = None, *,
                 topic: str | None = None, reader_schema_str: str | None = None,
                 auto_register: bool = True,
                 client_conf: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.subject = subject
        self.topic = topic if topic is not None else subject.removesuffix(VALUE_SUFFIX)
        text = (schema_str if schema_str is not None else schema_text()).strip()
        self.schema = Schema(text, "AVRO")
        self.client = SchemaRegistryClient.new_client({**(client_conf or {}), "url": url})
        self._auto_register = auto_register
        self._schema_id: int | None = None
        self._known_ids: set[int] = set()
        self._ctx = SerializationContext(self.topic, MessageField.VALUE)
        # The subject is given, not derived: every lookup uses exactly ``subject``.
        strategy = {"subject.name.strategy": lambda _ctx, _record_name: subject}
        self._serializer = AvroSerializer(
            self.client, self.schema, conf={**strategy, "auto.register.schemas": auto_register})
        self._deserializer = AvroDeserializer(self.client, reader_schema_str, conf=strategy)

    @classmethod
    def for_topic(cls, url: str, topic: str, schema_str: str | None = None,
                  **kwargs: Any) -> ConfluentCodec:
        """A codec for the values of ``topic`` (subject ``<topic>-value``)."""
        return cls(url, subject_for(topic), schema_str, topic=topic, **kwargs)

    @property
    def schema_id(self) -> int | None:
        """The writer schema's registry id, once registered (or looked up)."""
        return self._schema_id

    def register(self) -> int:
        """Register the writer schema under the subject (or, with ``auto_register=False``, look
        it up) and return its id; idempotent, cached. Call it at start-up to fail fast. Raises
        RegistryError if the registry is unreachable or rejects the schema (incompatible)."""
        if self._schema_id is not None:
            return self._schema_id
        try:
            if self._auto_register:
                reg = self.client.register_schema_full_response(self.subject, self.schema)
            else:
                reg = self.client.lookup_schema(self.subject, self.schema)
        except Exception as exc:  # SchemaRegistryError or the HTTP client's transport errors
            action = "register" if self._auto_register else "look up"
            raise RegistryError(f"cannot {action} the schema under subject {self.subject!r} "
                                f"at {self.url}: {exc}") from exc
        if reg.schema_id is None:
            raise RegistryError(f"{self.url} returned no schema id for {self.subject!r}")
        self._schema_id = int(reg.schema_id)
        return self._schema_id

    def encode(self, datum: dict[str, Any]) -> bytes:
        """``00`` + schema id + Avro body of ``datum``. Registers the schema first if needed
        (RegistryError); raises InvalidDatum if the datum does not fit the writer schema."""
        self.register()  # afterwards the serializer finds the id in the client's cache
        try:
            out = self._serializer(datum, self._ctx)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise InvalidDatum(f"datum does not fit the schema of {self.subject}: {exc}") from exc
        if not isinstance(out, bytes):
            raise InvalidDatum(f"serializer returned {type(out).__name__}, not bytes")
        return out

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode one Confluent-framed message (writer schema fetched by id, then cached).

        Raises BadMagicError / TruncatedBodyError (no Confluent header), UnknownSchemaError
        (the registry has no such id), TruncatedBodyError / CorruptBodyError (the body), a plain
        WireFormatError (the writer cannot be read as the reader schema), RegistryError.
        Trailing bytes after the body are not detected (the deserializer does not report them).
        """
        self._fetch_writer(schema_id_of(data))
        try:
            datum = self._deserializer(data, self._ctx)
        except EOFError:
            raise TruncatedBodyError(f"Avro body ends early ({len(data)} bytes)") from None
        except SchemaResolutionError as exc:
            raise WireFormatError(f"writer cannot be read as the reader schema: {exc}") from exc
        except (ValueError, IndexError, TypeError, UnicodeDecodeError, OverflowError) as exc:
            raise CorruptBodyError(f"Avro body does not decode: {type(exc).__name__}: {exc}"
                                   ) from exc
        if not isinstance(datum, dict):
            raise CorruptBodyError("Avro body is not a record")
        return datum

    def _fetch_writer(self, schema_id: int) -> None:
        """Make sure the writer schema of ``schema_id`` is in the client's cache, so that the
        deserializer's own lookup cannot fail and registry errors are told apart from bad data."""
        if schema_id in self._known_ids:
            return
        try:
            self.client.get_schema(schema_id, subject_name=self.subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchemaError(
                    f"the registry at {self.url} has no schema id {schema_id}") from exc
            raise RegistryError(f"cannot fetch schema id {schema_id} from {self.url}: {exc}"
                                ) from exc
        except Exception as exc:  # the HTTP client's transport errors
            raise RegistryError(f"cannot fetch schema id {schema_id} from {self.url}: {exc}"
                                ) from exc
        self._known_ids.add(schema_id)
