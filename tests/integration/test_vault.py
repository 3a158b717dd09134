"""The token vault against moto's DynamoDB and KMS over HTTP, with the template's table and key."""

from __future__ import annotations

import gc
import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from mailroom.errors import ConfigurationError, TransientError
from mailroom.vault import GoogleTokens, KmsRefused, TokenVault, VaultError

if TYPE_CHECKING:
    from tests.conftest import Deployment

TEAM = "T0VAULT"
ADA, BOB = "U0ADA", "U0BOB"
SCOPES = ("https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/gmail.send")
ROW_ATTRIBUTES = {"pk", "team_id", "user_id", "email", "scopes", "linked_at", "updated_at", "status", "tokens"}


def new_tokens(expiry: datetime | None = None) -> GoogleTokens:
    # Random, so a token found anywhere can only have come from this test.
    return GoogleTokens(
        access_token="ya29." + secrets.token_urlsafe(24),
        refresh_token="1//" + secrets.token_urlsafe(24),
        expiry=expiry or datetime.now(UTC) + timedelta(hours=1),
        scopes=SCOPES,
        token_uri="https://oauth2.googleapis.com/token",
    )


@pytest.fixture
def vault(deployment: Deployment) -> TokenVault:
    return TokenVault(deployment.physical("TokensTable"), deployment.physical("TokensKey", "Arn"))


@pytest.fixture
def ddb(deployment: Deployment) -> Any:
    return deployment.aws.client("dynamodb")


def rows(deployment: Deployment, ddb: Any) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=deployment.physical("TokensTable"))["Items"])


def row(deployment: Deployment, ddb: Any, user_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"{TEAM}#{user_id}"}}
    return dict(ddb.get_item(TableName=deployment.physical("TokensTable"), Key=key)["Item"])


def leaves(value: Any) -> Iterator[str | bytes]:
    """Every string and binary inside DynamoDB attribute values, however nested."""
    if isinstance(value, str | bytes):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)


def test_save_then_load_round_trips(vault: TokenVault):
    naive_expiry = datetime(2031, 5, 17, 12, 30)  # naive means UTC
    tokens = new_tokens(expiry=naive_expiry)
    saved = vault.save(TEAM, ADA, "ada@example.com", tokens)

    loaded = vault.load(TEAM, ADA)
    assert loaded is not None and loaded == saved
    assert loaded.tokens.access_token == tokens.access_token
    assert loaded.tokens.refresh_token == tokens.refresh_token
    assert loaded.tokens.expiry == naive_expiry.replace(tzinfo=UTC)
    assert loaded.tokens.expiry.tzinfo is UTC and loaded.linked_at.tzinfo is UTC
    assert (loaded.email, loaded.scopes, loaded.status) == ("ada@example.com", SCOPES, "linked")
    assert abs(datetime.now(UTC) - loaded.linked_at) < timedelta(minutes=1)


def test_load_of_a_user_without_a_link_is_none(vault: TokenVault):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    assert vault.load(TEAM, BOB) is None


def test_no_token_is_stored_in_plaintext(vault: TokenVault, deployment: Deployment, ddb: Any):
    tokens = new_tokens()
    link = vault.save(TEAM, ADA, "ada@example.com", tokens)
    vault.update_tokens(link, refreshed := new_tokens())

    [item] = rows(deployment, ddb)
    assert set(item) == ROW_ATTRIBUTES
    assert set(item["tokens"]) == {"B"}
    found = list(leaves(item))
    assert "ada@example.com" in found  # the walk does reach the stored values
    for token in (tokens.access_token, tokens.refresh_token, refreshed.access_token, refreshed.refresh_token):
        for leaf in found:
            if isinstance(leaf, bytes):
                assert token.encode() not in leaf
            else:
                assert token not in leaf


def test_the_blob_names_its_owner_in_the_encryption_context(vault: TokenVault, deployment: Deployment, ddb: Any):
    import aws_encryption_sdk

    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    blob = row(deployment, ddb, ADA)["tokens"]["B"]
    sdk = aws_encryption_sdk.EncryptionSDKClient()
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[deployment.physical("TokensKey", "Arn")])
    _, header = sdk.decrypt(source=blob, key_provider=provider)
    expected = {"app": "mailroom", "purpose": "google-tokens", "slack_team": TEAM, "slack_user": ADA}
    assert expected.items() <= header.encryption_context.items()


def test_a_blob_copied_into_another_users_row_does_not_decrypt_for_them(
    vault: TokenVault, deployment: Deployment, ddb: Any
):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    vault.save(TEAM, BOB, "bob@example.com", new_tokens())
    bobs_row = row(deployment, ddb, BOB) | {"tokens": row(deployment, ddb, ADA)["tokens"]}
    ddb.put_item(TableName=deployment.physical("TokensTable"), Item=bobs_row)

    with pytest.raises(VaultError):
        vault.load(TEAM, BOB)
    assert vault.load(TEAM, ADA) is not None  # the blob itself is fine, for its owner


def test_a_whole_row_copied_under_another_user_does_not_decrypt(vault: TokenVault, deployment: Deployment, ddb: Any):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    stolen = row(deployment, ddb, ADA) | {"pk": {"S": f"{TEAM}#{BOB}"}, "user_id": {"S": BOB}}
    ddb.put_item(TableName=deployment.physical("TokensTable"), Item=stolen)

    with pytest.raises(VaultError):
        vault.load(TEAM, BOB)


def unclosed_decryptors() -> set[int]:
    from aws_encryption_sdk.streaming_client import StreamDecryptor

    return {id(o) for o in gc.get_objects() if isinstance(o, StreamDecryptor) and not o.closed}


# Positions in the ~900-byte message: the header (context, wrapped data key), the last
# body frame (just before the ~105-byte ECDSA signature footer), the signature itself.
@pytest.mark.parametrize("where", ["header", "body", "signature", "truncated"])
def test_a_tampered_blob_raises(vault: TokenVault, deployment: Deployment, ddb: Any, where: str):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    item = row(deployment, ddb, ADA)
    blob = bytearray(item["tokens"]["B"])
    if where == "truncated":
        blob = blob[: len(blob) // 2]
    else:
        blob[{"header": 40, "body": len(blob) - 130, "signature": len(blob) - 1}[where]] ^= 0x01
    ddb.put_item(TableName=deployment.physical("TokensTable"), Item=item | {"tokens": {"B": bytes(blob)}})

    before = unclosed_decryptors()
    with pytest.raises(VaultError):
        vault.load(TEAM, ADA)
    # A half-read decryptor left open prints "Exception ignored ... Footer not read"
    # to stderr when it is finalised; the vault closes it itself.
    assert unclosed_decryptors() <= before


def test_update_tokens_keeps_linked_at_and_email_and_replaces_the_tokens(
    vault: TokenVault, deployment: Deployment, ddb: Any
):
    linked_at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = vault.save(TEAM, ADA, "ada@example.com", new_tokens(), linked_at=linked_at)
    updated_before = row(deployment, ddb, ADA)["updated_at"]["S"]
    refreshed = new_tokens()

    returned = vault.update_tokens(first, refreshed)
    loaded = vault.load(TEAM, ADA)

    assert loaded is not None and loaded == returned
    assert loaded.tokens == refreshed and loaded.tokens.access_token != first.tokens.access_token
    assert (loaded.linked_at, loaded.email, loaded.status) == (linked_at, "ada@example.com", "linked")
    assert row(deployment, ddb, ADA)["updated_at"]["S"] > updated_before


def test_update_tokens_does_not_bring_back_a_revoked_or_replaced_link(vault: TokenVault):
    stale = vault.save(TEAM, ADA, "ada@example.com", new_tokens(), linked_at=datetime(2024, 1, 1, tzinfo=UTC))
    relinked = vault.save(TEAM, ADA, "ada@work.example", new_tokens())
    vault.update_tokens(stale, new_tokens())
    assert vault.load(TEAM, ADA) == relinked

    vault.delete(TEAM, ADA)
    returned = vault.update_tokens(relinked, refreshed := new_tokens())
    assert returned.tokens == refreshed  # usable for the request in flight...
    assert vault.load(TEAM, ADA) is None  # ...but not stored


def test_mark_broken_shows_on_load(vault: TokenVault, deployment: Deployment, ddb: Any):
    tokens = new_tokens()
    vault.save(TEAM, ADA, "ada@example.com", tokens)
    vault.mark_broken(TEAM, ADA)
    link = vault.load(TEAM, ADA)
    assert link is not None and link.status == "broken" and link.tokens == tokens

    vault.mark_broken(TEAM, BOB)  # no link: nothing to mark, and no bare row created
    assert vault.load(TEAM, BOB) is None
    assert len(rows(deployment, ddb)) == 1


def test_delete_reports_whether_there_was_a_link(vault: TokenVault):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    assert vault.delete(TEAM, ADA) is True
    assert vault.delete(TEAM, ADA) is False
    assert vault.load(TEAM, ADA) is None


def test_repr_and_str_show_no_token(vault: TokenVault):
    tokens = new_tokens()
    link = vault.save(TEAM, ADA, "ada@example.com", tokens)
    for text in (repr(tokens), str(tokens), repr(link), str(link), f"{link}", f"{[link]}"):
        assert tokens.access_token not in text and tokens.refresh_token not in text
    assert "ada@example.com" in repr(link) and "***" in repr(tokens)  # still useful for debugging


def test_an_injected_kms_client_reads_and_writes_the_same_blobs(
    vault: TokenVault, deployment: Deployment, ddb: Any, monkeypatch: pytest.MonkeyPatch
):
    kms = deployment.aws.client("kms")
    injected = TokenVault(
        deployment.physical("TokensTable"), deployment.physical("TokensKey", "Arn"), ddb, kms_client_factory=lambda: kms
    )
    # The injected clients carry their own endpoint; the environment's is not needed.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    ada = injected.save(TEAM, ADA, "ada@example.com", new_tokens())
    monkeypatch.setenv("AWS_ENDPOINT_URL", deployment.aws.endpoint_url)
    bob = vault.save(TEAM, BOB, "bob@example.com", new_tokens())

    assert vault.load(TEAM, ADA) == ada
    assert injected.load(TEAM, BOB) == bob


def test_kms_out_of_reach_is_transient_every_time(
    vault: TokenVault, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", dead)  # KMS only; DynamoDB still answers
    down = TokenVault(deployment.physical("TokensTable"), deployment.physical("TokensKey", "Arn"))

    # Twice each: a second network failure on the same provider must not read as a bad blob.
    for _ in range(2):
        with pytest.raises(TransientError):
            down.save(TEAM, BOB, "bob@example.com", new_tokens())
        with pytest.raises(TransientError):
            down.load(TEAM, ADA)
    monkeypatch.delenv("AWS_ENDPOINT_URL_KMS")
    assert down.load(TEAM, ADA) is not None  # and it recovers once KMS is back


def test_a_key_alias_is_refused_at_construction():
    with pytest.raises(ConfigurationError):
        TokenVault("table", "alias/mailroom-dev-tokens")


def kms_answering(deployment: Deployment, code: str) -> Any:
    """A KMS client whose Decrypt gets `code`, as KMS answers once botocore's retries gave
    up (moto neither throttles nor enforces disabled keys or key policies): pinned as is."""
    kms = deployment.aws.client("kms")

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": code, "Message": "m"}}

    kms.meta.events.register("before-call.kms.Decrypt", answer)
    return kms


def test_kms_refusing_the_key_is_told_apart_from_a_damaged_blob(
    vault: TokenVault, deployment: Deployment, caplog: pytest.LogCaptureFixture
):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    for code in ("AccessDeniedException", "DisabledException", "KeyUnavailableException"):
        refused = TokenVault(
            deployment.physical("TokensTable"),
            deployment.physical("TokensKey", "Arn"),
            kms_client_factory=lambda code=code: kms_answering(deployment, code),  # type: ignore[misc]
        )
        with pytest.raises(KmsRefused):
            refused.load(TEAM, ADA)
        [logged] = [r for r in caplog.records if getattr(r, "kms_error", None) == code]
        assert logged.levelname == "ERROR" and logged.getMessage() == "KMS refused the token key"
    # A key that is gone (moto's own NotFoundException) refuses new links too.
    arn = deployment.physical("TokensKey", "Arn")
    gone = TokenVault(
        deployment.physical("TokensTable"), arn.rsplit("/", 1)[0] + "/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    with pytest.raises(KmsRefused):
        gone.save(TEAM, BOB, "bob@example.com", new_tokens())


def test_kms_throttling_is_transient(vault: TokenVault, deployment: Deployment, monkeypatch: pytest.MonkeyPatch):
    vault.save(TEAM, ADA, "ada@example.com", new_tokens())
    kms = kms_answering(deployment, "ThrottlingException")
    throttled = TokenVault(
        deployment.physical("TokensTable"), deployment.physical("TokensKey", "Arn"), kms_client_factory=lambda: kms
    )
    with pytest.raises(TransientError):
        throttled.load(TEAM, ADA)
