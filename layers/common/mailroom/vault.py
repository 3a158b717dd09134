"""The token vault: each Slack user's Google tokens, encrypted, in DynamoDB.

One row per Slack user, keyed `pk = "{team_id}#{user_id}"`. The row holds the ids, the
Gmail address, the granted scopes, `linked_at`, `updated_at` and `status` in the clear,
and `tokens`: the AWS Encryption SDK message of the JSON token set, under the KMS key
the template declares. Nothing else holds a token.

The encryption context names the owner (team and user). The Encryption SDK stores it in
the message header and KMS binds the data key to it, but the SDK does not compare it with
anything on decrypt, so `load` checks it against the row it asked for: a blob copied
into another user's row does not decrypt for that user.

Cost: one KMS GenerateDataKey per `save`/`update_tokens` and one KMS Decrypt per `load`
(one per Slack command that needs Gmail). At that rate a data-key cache would save
little and would keep plaintext data keys in memory across users, so there is none.

Times are timezone-aware UTC throughout (`GoogleTokens.expiry`, `GmailLink.linked_at`);
a naive datetime handed in is taken to be UTC.

Imports are light: boto3 and the Encryption SDK (a few hundred ms) are imported on first
use, so modules that only need the dataclasses stay cheap to import.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from mailroom.adapters.aws import LazyClient
from mailroom.errors import ConfigurationError, MailroomError, TransientError
from mailroom.observability import logger

LinkStatus = Literal["linked", "broken"]

_CONTEXT_APP = {"app": "mailroom", "purpose": "google-tokens"}
_PAYLOAD_VERSION = 1


class VaultError(MailroomError):
    """A stored token blob cannot be used for this row: it does not decrypt, was
    encrypted for another user, or is malformed. The user has to link Gmail again."""


class KmsRefused(VaultError):
    """KMS refused the token key (access denied, key disabled, unavailable or deleted):
    an operator's matter, logged as such. For the user it is a broken link too."""


# KMS answers that mean "not now" (retry) and "not with this key" (refused).
_KMS_TRANSIENT = frozenset({"ThrottlingException", "KMSInternalException", "LimitExceededException"})
_KMS_REFUSED = frozenset(
    {
        "AccessDeniedException",
        "DisabledException",
        "KeyUnavailableException",
        "NotFoundException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
        "IncorrectKeyException",
        "UnrecognizedClientException",
    }
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class GoogleTokens:
    """What Google gave us. `expiry` is aware UTC (naive input is taken as UTC)."""

    access_token: str
    refresh_token: str
    expiry: datetime | None
    scopes: tuple[str, ...]
    token_uri: str

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so every instance compares alike.
        if self.expiry is not None:
            object.__setattr__(self, "expiry", _utc(self.expiry))
        object.__setattr__(self, "scopes", tuple(self.scopes))

    def __repr__(self) -> str:
        # Tokens end up in logs through repr (tracebacks, f-strings); show only whether they are set.
        return (
            f"GoogleTokens(access_token={_mask(self.access_token)}, refresh_token={_mask(self.refresh_token)}, "
            f"expiry={self.expiry!r}, scopes={self.scopes!r}, token_uri={self.token_uri!r})"
        )

    __str__ = __repr__


def _mask(token: str) -> str:
    return "'***'" if token else "''"


@dataclass(frozen=True)
class GmailLink:
    """A stored link, decrypted. `broken` means Google refused the refresh token
    (invalid_grant): the user must run `auth` again. Its repr shows no token, because
    GoogleTokens' repr shows none."""

    team_id: str
    user_id: str
    email: str
    scopes: tuple[str, ...]
    linked_at: datetime
    status: LinkStatus
    tokens: GoogleTokens


class TokenVault:
    """The LinkStore of `mailroom.ports`, on DynamoDB and KMS.

    Clients and the Encryption SDK's key provider are built on first use and kept, so a
    vault built once per Lambda container reuses them across warm invocations.
    `kms_client_factory`, when given, returns the KMS client to use (tests, or callers
    that configure their own); otherwise the SDK's strict KMS provider builds one from
    the environment, AWS_ENDPOINT_URL included.

    KMS out of reach or throttling (past botocore's retries) raises TransientError. KMS
    refusing the key (access denied, disabled, unavailable) raises KmsRefused, logged
    with KMS's error code; a blob that is not this user's or is damaged, VaultError. The
    Encryption SDK does not pass KMS's reason on, so the vault reads it from the KMS
    client's own answers (a botocore event hook). The row is left as it is.
    """

    def __init__(
        self,
        table_name: str,
        key_arn: str,
        dynamodb_client: Any | None = None,
        kms_client_factory: Callable[[], Any] | None = None,
    ):
        # The strict provider decrypts only with key ARNs it was given: an alias would
        # encrypt fine and then fail every decrypt. Catch that at construction.
        if not key_arn.startswith("arn:") or ":key/" not in key_arn:
            raise ConfigurationError("TOKENS_KEY_ARN must be a KMS key ARN (not an alias or key id)")
        self._table_name = table_name
        self._key_arn = key_arn
        self._dynamodb_client = LazyClient("dynamodb", dynamodb_client)
        self._kms_client_factory = kms_client_factory
        self._sdk: Any | None = None
        self._provider: Any | None = None
        self._kms_error: str | None = None  # KMS's error code in the current call, if any

    # ------------------------------------------------------------------ clients

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb_client()

    def _crypto(self) -> tuple[Any, Any]:
        """The Encryption SDK client and key provider, built once."""
        if self._sdk is None or self._provider is None:
            from aws_encryption_sdk import CommitmentPolicy, EncryptionSDKClient

            if self._kms_client_factory is not None:
                from aws_encryption_sdk.key_providers.kms import KMSMasterKey

                # A single KMS master key is itself a strict provider: it only
                # decrypts data keys wrapped by this key ARN.
                client = self._kms_client_factory()
                client.meta.events.register("after-call.kms", self._note_kms_answer)
                provider: Any = KMSMasterKey(key_id=self._key_arn, client=client)
            else:
                import botocore.session
                from aws_encryption_sdk import StrictAwsKmsMasterKeyProvider

                # The provider builds its KMS clients from this botocore session, which
                # resolves AWS_ENDPOINT_URL(_KMS) from the environment like boto3.client();
                # they inherit the session's event hooks.
                session = botocore.session.Session()
                session.register("after-call.kms", self._note_kms_answer)
                provider = StrictAwsKmsMasterKeyProvider(key_ids=[self._key_arn], botocore_session=session)
            self._sdk = EncryptionSDKClient(
                commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
                # We always encrypt under one key; refusing more bounds the KMS calls a
                # hostile blob could make us attempt.
                max_encrypted_data_keys=1,
            )
            self._provider = provider
        return self._sdk, self._provider

    # ------------------------------------------------------------------ LinkStore

    def save(
        self, team_id: str, user_id: str, email: str, tokens: GoogleTokens, *, linked_at: datetime | None = None
    ) -> GmailLink:
        """Store a new link for the user, replacing any previous one."""
        now = datetime.now(UTC)
        link = GmailLink(
            team_id=team_id,
            user_id=user_id,
            email=email,
            scopes=tokens.scopes,
            linked_at=_utc(linked_at or now),
            status="linked",
            tokens=tokens,
        )
        self.dynamodb.put_item(
            TableName=self._table_name,
            Item={
                "pk": {"S": _pk(team_id, user_id)},
                "team_id": {"S": team_id},
                "user_id": {"S": user_id},
                "email": {"S": email},
                "scopes": _scopes_attribute(link.scopes),
                "linked_at": {"S": link.linked_at.isoformat()},
                "updated_at": {"S": now.isoformat()},
                "status": {"S": link.status},
                "tokens": {"B": self._encrypt(team_id, user_id, tokens)},
            },
        )
        return link

    def load(self, team_id: str, user_id: str) -> GmailLink | None:
        """The user's link, or None. Raises VaultError if its blob is not theirs or is damaged."""
        # Consistent: a load right after a save or refresh must see it.
        item = self.dynamodb.get_item(
            TableName=self._table_name, Key={"pk": {"S": _pk(team_id, user_id)}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        blob = item.get("tokens", {}).get("B")
        if not isinstance(blob, bytes | bytearray):
            raise self._refuse(team_id, user_id, "no token blob")
        tokens = self._decrypt(team_id, user_id, bytes(blob))
        try:
            return GmailLink(
                team_id=team_id,
                user_id=user_id,
                email=item["email"]["S"],
                scopes=tuple(scope["S"] for scope in item.get("scopes", {}).get("L", [])),
                linked_at=_utc(datetime.fromisoformat(item["linked_at"]["S"])),
                # Fail closed: anything but "linked" sends the user back to `auth`.
                status="linked" if item.get("status", {}).get("S") == "linked" else "broken",
                tokens=tokens,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._refuse(team_id, user_id, f"malformed row: {type(exc).__name__}") from exc

    def update_tokens(self, link: GmailLink, tokens: GoogleTokens) -> GmailLink:
        """Store refreshed tokens for `link`, keeping its email and linked_at.

        Only the same link is updated: if the user revoked or linked again meanwhile,
        the row is left alone (refreshed tokens of an old grant must not resurrect or
        overwrite it) and the refreshed link is returned for this request only.
        """
        updated = replace(link, tokens=tokens, scopes=tokens.scopes)
        try:
            self.dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": {"S": _pk(link.team_id, link.user_id)}},
                UpdateExpression="SET #t = :tokens, scopes = :scopes, updated_at = :now",
                ConditionExpression="linked_at = :linked_at",
                ExpressionAttributeNames={"#t": "tokens"},
                ExpressionAttributeValues={
                    ":tokens": {"B": self._encrypt(link.team_id, link.user_id, tokens)},
                    ":scopes": _scopes_attribute(updated.scopes),
                    ":now": {"S": datetime.now(UTC).isoformat()},
                    ":linked_at": {"S": _utc(link.linked_at).isoformat()},
                },
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            logger.info(
                "gmail link changed during a refresh; refreshed tokens not stored",
                extra={"team_id": link.team_id, "user_id": link.user_id},
            )
        return updated

    def mark_broken(self, team_id: str, user_id: str) -> None:
        """Record that Google refused the refresh token. No-op if there is no link."""
        try:
            self.dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": {"S": _pk(team_id, user_id)}},
                UpdateExpression="SET #s = :broken, updated_at = :now",
                ConditionExpression="attribute_exists(pk)",  # never create a bare row
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":broken": {"S": "broken"}, ":now": {"S": datetime.now(UTC).isoformat()}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return
        logger.info("gmail link marked broken", extra={"team_id": team_id, "user_id": user_id})

    def delete(self, team_id: str, user_id: str) -> bool:
        """Remove the user's link; True if there was one."""
        response = self.dynamodb.delete_item(
            TableName=self._table_name, Key={"pk": {"S": _pk(team_id, user_id)}}, ReturnValues="ALL_OLD"
        )
        return bool(response.get("Attributes"))

    def email_of(self, team_id: str, user_id: str) -> str | None:
        """The linked address, read without decrypting anything (the OAuth callback
        compares it with a new link and holds no kms:Decrypt)."""
        item = self.dynamodb.get_item(
            TableName=self._table_name,
            Key={"pk": {"S": _pk(team_id, user_id)}},
            ProjectionExpression="email",
            ConsistentRead=True,
        ).get("Item")
        return str(item["email"]["S"]) if item and "email" in item else None

    # ------------------------------------------------------------------ crypto

    def _encrypt(self, team_id: str, user_id: str, tokens: GoogleTokens) -> bytes:
        from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
        from botocore.exceptions import BotoCoreError

        sdk, provider = self._crypto()
        self._kms_error = None
        try:
            blob, _header = sdk.encrypt(
                source=_serialize(tokens), encryption_context=_context(team_id, user_id), key_provider=provider
            )
        except BotoCoreError as exc:  # KMS unreachable; the SDK wraps KMS's own refusals
            raise self._kms_unreachable(exc) from exc
        except AWSEncryptionSDKClientError as exc:
            # GenerateDataKey refused (access, throttling after retries, disabled key).
            raise self._kms_failure(team_id, user_id) or VaultError(
                f"could not encrypt tokens: {type(exc).__name__}"
            ) from exc
        return bytes(blob)

    def _decrypt(self, team_id: str, user_id: str, blob: bytes) -> GoogleTokens:
        from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
        from botocore.exceptions import BotoCoreError

        sdk, provider = self._crypto()
        self._kms_error = None
        # A stream rather than sdk.decrypt(): on failure decrypt() drops a half-read
        # decryptor whose finalizer prints "Exception ignored ... Footer not read" to
        # stderr; here it is closed for good either way.
        decryptor = sdk.stream(mode="decrypt", source=blob, key_provider=provider)
        try:
            plaintext = decryptor.read()
            context = dict(decryptor.header.encryption_context)
        except BotoCoreError as exc:  # KMS unreachable
            raise self._kms_unreachable(exc) from exc
        except Exception as exc:
            # KMS itself said no (throttled, or refused the key): not the blob's fault.
            kms_failure = self._kms_failure(team_id, user_id)
            if kms_failure is not None:
                raise kms_failure from exc
            # The blob is untrusted input, and what fails on it varies: the SDK's own
            # errors (a foreign key; truncation), InvalidTag or InvalidSignature from a
            # tampered body or footer, UnicodeDecodeError from a mangled header. Any of
            # them: no tokens.
            raise self._refuse(team_id, user_id, type(exc).__name__) from exc
        finally:
            try:
                decryptor.close()
            except AWSEncryptionSDKClientError:
                io.IOBase.close(decryptor)  # mark closed so its finalizer does not retry
        expected = _context(team_id, user_id)
        if any(context.get(name) != value for name, value in expected.items()):
            # Decrypted, but for someone else: never return those tokens.
            raise self._refuse(team_id, user_id, "encryption context names another owner")
        try:
            return _deserialize(plaintext)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise self._refuse(team_id, user_id, f"malformed token set: {type(exc).__name__}") from exc

    def _note_kms_answer(self, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        """botocore's after-call hook on the vault's KMS clients: keep KMS's error code."""
        code = ((parsed or {}).get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
        if code:
            self._kms_error = str(code)

    def _kms_failure(self, team_id: str, user_id: str) -> MailroomError | None:
        """What KMS's own error (if it answered one) means: TransientError or KmsRefused."""
        code = self._kms_error
        if code is None:
            return None
        if code in _KMS_TRANSIENT:
            return TransientError(f"KMS throttled: {code}")
        if code in _KMS_REFUSED:
            # An operator must act (key policy, disabled or deleted key); ids and code only.
            logger.error("KMS refused the token key", extra={"team_id": team_id, "user_id": user_id, "kms_error": code})
            return KmsRefused(f"KMS refused the token key: {code}")
        return None

    def _kms_unreachable(self, exc: Exception) -> TransientError:
        # After a BotoCoreError the strict provider drops its cached KMS client, and the
        # next BotoCoreError then surfaces as KeyError -> DecryptKeyError, which would
        # read as a bad blob. A fresh provider keeps network failures transient.
        self._sdk = self._provider = None
        return TransientError(f"KMS unreachable: {type(exc).__name__}")

    @staticmethod
    def _refuse(team_id: str, user_id: str, reason: str) -> VaultError:
        # A blob that is not this user's is a security signal worth a warning; ids only.
        logger.warning("token blob refused", extra={"team_id": team_id, "user_id": user_id, "reason": reason})
        return VaultError(f"stored tokens for {team_id}/{user_id} cannot be used: {reason}")


def _pk(team_id: str, user_id: str) -> str:
    # Slack ids never contain "#"; refusing it keeps "T#U" keys unambiguous.
    if not team_id or not user_id or "#" in team_id or "#" in user_id:
        raise ValueError("team_id and user_id must be non-empty Slack ids")
    return f"{team_id}#{user_id}"


def _context(team_id: str, user_id: str) -> dict[str, str]:
    return {**_CONTEXT_APP, "slack_team": team_id, "slack_user": user_id}


def _scopes_attribute(scopes: tuple[str, ...]) -> dict[str, Any]:
    return {"L": [{"S": scope} for scope in scopes]}  # a list, not a set: a set cannot be empty


def _serialize(tokens: GoogleTokens) -> bytes:
    payload = {
        "v": _PAYLOAD_VERSION,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expiry": tokens.expiry.isoformat() if tokens.expiry else None,
        "scopes": list(tokens.scopes),
        "token_uri": tokens.token_uri,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _deserialize(plaintext: bytes) -> GoogleTokens:
    payload = json.loads(plaintext)
    if payload.get("v") != _PAYLOAD_VERSION:
        raise ValueError("unknown token set version")
    expiry = payload["expiry"]
    fields = (payload["access_token"], payload["refresh_token"], payload["token_uri"], *payload["scopes"])
    if not all(isinstance(value, str) for value in fields) or not (expiry is None or isinstance(expiry, str)):
        raise TypeError("token set fields have the wrong types")
    return GoogleTokens(
        access_token=payload["access_token"],
        refresh_token=payload["refresh_token"],
        expiry=datetime.fromisoformat(expiry) if expiry else None,
        scopes=tuple(payload["scopes"]),
        token_uri=payload["token_uri"],
    )
