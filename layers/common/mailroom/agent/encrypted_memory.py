"""Agent memory encrypted for its owner: LangGraph's EncryptedSerializer with a KMS
envelope cipher whose encryption context names the Slack team and user.

Checkpoints and pending writes hold mail bodies, so every blob the DynamoDB saver
stores is sealed with AES-256-GCM under a data key from the KMS key. The owner is bound
twice: KMS wraps the data key under an encryption context naming the owner (KMS refuses
to unwrap it under any other), and the owner is the AES-GCM associated data of every
blob. A checkpoint copied into another user's thread therefore does not decrypt for
them, and nothing stored in the clear is accepted.

Cost: the data key of an owner is kept in memory for a while (`max_age_seconds`,
`max_uses`), so a warm worker makes no KMS call for a turn and a cold one makes one:
either Decrypt of the key that sealed the latest checkpoint (which then also seals the
turn's new writes) or GenerateDataKey for a conversation's first checkpoint.

Who owns the memory being read or written comes from `owner_scope()`, entered around
each command that runs the agent (bootstrap does it); outside it, nothing is sealed or
opened.
"""

from __future__ import annotations

import contextvars
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.base import CipherProtocol, SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from mailroom.adapters.aws import LazyClient
from mailroom.errors import ConfigurationError, MailroomError, TransientError
from mailroom.observability import logger, metrics

CIPHER_NAME = "kms-aes256gcm-v1"
_NONCE_BYTES = 12
_CONTEXT_APP = {"app": "mailroom", "purpose": "agent-memory"}


class MemoryNotYours(MailroomError):
    """A stored checkpoint or write does not open for the user whose turn this is: it
    was sealed for someone else, tampered with, or stored in the clear."""


@dataclass(frozen=True)
class Owner:
    team_id: str
    user_id: str

    def context(self) -> dict[str, str]:
        return {**_CONTEXT_APP, "slack_team": self.team_id, "slack_user": self.user_id}

    def associated_data(self) -> bytes:
        return f"{self.team_id}\x00{self.user_id}".encode()


_owner: contextvars.ContextVar[Owner | None] = contextvars.ContextVar("mailroom_memory_owner", default=None)


@contextmanager
def owner_scope(team_id: str, user_id: str) -> Iterator[Owner]:
    """Memory read or written inside this block belongs to this Slack user."""
    if not team_id or not user_id:
        raise ValueError("a memory owner needs a team and a user")
    owner = Owner(team_id, user_id)
    token = _owner.set(owner)
    try:
        yield owner
    finally:
        _owner.reset(token)


def current_owner() -> Owner:
    owner = _owner.get()
    if owner is None:
        # Fail closed: memory is never sealed or opened for nobody in particular.
        raise ConfigurationError("agent memory used outside owner_scope()")
    return owner


@dataclass
class _DataKey:
    plaintext: bytes
    wrapped: bytes
    born: float
    uses: int = 0


class KmsEnvelopeCipher(CipherProtocol):
    """AES-256-GCM under per-owner data keys that KMS wraps with the owner's context.

    Blob layout: 2-byte length of the wrapped key, the wrapped key (KMS ciphertext
    blob), a 12-byte random nonce, then the AES-GCM ciphertext and tag."""

    def __init__(
        self,
        key_arn: str,
        kms_client: Any | None = None,
        *,
        max_age_seconds: float = 900,
        max_uses: int = 10_000,
        max_owners: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not key_arn.startswith("arn:") or ":key/" not in key_arn:
            raise ConfigurationError("TOKENS_KEY_ARN must be a KMS key ARN (not an alias or key id)")
        self._key_arn = key_arn
        self._kms = LazyClient("kms", kms_client)
        self._max_age = max_age_seconds
        self._max_uses = max_uses
        self._max_owners = max_owners
        self._clock = clock
        self._keys: OrderedDict[Owner, _DataKey] = OrderedDict()
        self._lock = threading.Lock()
        self.kms_calls = 0  # observable cost, for tests and the benchmark

    # -- CipherProtocol --------------------------------------------------------------
    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        owner = current_owner()
        key = self._key_for_sealing(owner)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key.plaintext).encrypt(nonce, plaintext, owner.associated_data())
        return CIPHER_NAME, struct.pack(">H", len(key.wrapped)) + key.wrapped + nonce + sealed

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        owner = current_owner()
        if ciphername != CIPHER_NAME:
            raise MemoryNotYours(f"unknown cipher {ciphername[:40]!r}")
        try:
            (length,) = struct.unpack_from(">H", ciphertext)
            wrapped = ciphertext[2 : 2 + length]
            nonce = ciphertext[2 + length : 2 + length + _NONCE_BYTES]
            sealed = ciphertext[2 + length + _NONCE_BYTES :]
        except struct.error as exc:
            raise MemoryNotYours("truncated blob") from exc
        if len(wrapped) != length or len(nonce) != _NONCE_BYTES:
            raise MemoryNotYours("truncated blob")
        key = self._key_for_opening(owner, wrapped)
        try:
            return AESGCM(key).decrypt(nonce, sealed, owner.associated_data())
        except InvalidTag as exc:
            raise MemoryNotYours("blob does not open for this owner") from exc

    # -- data keys -------------------------------------------------------------------
    def _cached(self, owner: Owner) -> _DataKey | None:
        key = self._keys.get(owner)
        if key is None:
            return None
        if self._clock() - key.born > self._max_age or key.uses >= self._max_uses:
            del self._keys[owner]
            return None
        self._keys.move_to_end(owner)
        return key

    def _remember(self, owner: Owner, key: _DataKey) -> None:
        self._keys[owner] = key
        self._keys.move_to_end(owner)
        while len(self._keys) > self._max_owners:
            self._keys.popitem(last=False)

    def _key_for_sealing(self, owner: Owner) -> _DataKey:
        with self._lock:
            key = self._cached(owner)
            if key is None:
                answer = self._call_kms(
                    "generate_data_key", KeyId=self._key_arn, KeySpec="AES_256", EncryptionContext=owner.context()
                )
                key = _DataKey(answer["Plaintext"], answer["CiphertextBlob"], self._clock())
                self._remember(owner, key)
            key.uses += 1
            return key

    def _key_for_opening(self, owner: Owner, wrapped: bytes) -> bytes:
        with self._lock:
            key = self._cached(owner)
            if key is not None and key.wrapped == wrapped:
                return key.plaintext
            # KMS checks the context: a key wrapped for another owner does not unwrap.
            answer = self._call_kms(
                "decrypt", KeyId=self._key_arn, CiphertextBlob=wrapped, EncryptionContext=owner.context()
            )
            # This owner's key now: the turn's new writes reuse it instead of a second call.
            self._remember(owner, _DataKey(answer["Plaintext"], wrapped, self._clock()))
            return bytes(answer["Plaintext"])

    def _call_kms(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        self.kms_calls += 1
        try:
            return dict(getattr(self._kms(), operation)(**kwargs))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"ThrottlingException", "KMSInternalException", "DependencyTimeoutException"}:
                raise TransientError(f"KMS {operation}: {code}") from exc
            if operation == "decrypt" and code in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise MemoryNotYours("KMS refused the data key for this owner") from exc
            raise
        except BotoCoreError as exc:
            raise TransientError(f"KMS unreachable: {type(exc).__name__}") from exc


class OwnerBoundSerializer(EncryptedSerializer):
    """LangGraph's EncryptedSerializer, sealing for the owner in scope.

    Memory saved before it was encrypted (a deployment upgraded in place) is still read,
    so no conversation breaks on the upgrade; the next save seals it, and pruning drops
    the old checkpoints. Refusing it would break every such conversation until its TTL;
    what it would guard against (a plaintext item planted by someone who can write the
    table) cannot make anything be sent: every send waits for the owner's press."""

    def __init__(self, cipher: KmsEnvelopeCipher, serde: SerializerProtocol | None = None):
        super().__init__(cipher, serde or JsonPlusSerializer())

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        if "+" not in data[0]:
            logger.warning("memory saved before encryption read; it is sealed on the next save")
            metrics.add_metric(name="LegacyMemoryRead", unit="Count", value=1)
        elif not data[0].endswith("+" + CIPHER_NAME):
            raise MemoryNotYours("memory sealed by another cipher")
        return super().loads_typed(data)


def encrypt_memory(saver: Any, cipher: KmsEnvelopeCipher) -> Any:
    """Make `saver` (a langgraph-checkpoint-aws DynamoDBSaver) seal everything it stores
    with `cipher`, around the serializer it already has.

    DynamoDBSaver takes no serde argument: it wraps `self.serde` in its own
    CheckpointSerializer at construction, so both places are set."""
    inner = getattr(saver, "serializer", None)
    if inner is None or not hasattr(inner, "serde"):
        raise ConfigurationError("this checkpointer does not expose its serializer; memory would not be encrypted")
    serde = OwnerBoundSerializer(cipher, saver.serde)
    saver.serde = serde
    inner.serde = serde
    return saver
