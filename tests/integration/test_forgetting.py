"""Revoke (and linking another address) forgets: the worker and callback in process
against moto's server and the emulators, every table of the template scanned after."""

from __future__ import annotations

from typing import Any

from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_TEAM_ID, LOCAL_USER_ID
from mailroom.agent.checkpoints import TurnCachedSaver
from mailroom.agent.encrypted_memory import KmsEnvelopeCipher, encrypt_memory, owner_scope
from mailroom.forget import ThreadIndex
from tests.integration.harness import Harness
from tests.integration.test_encrypted_memory import save_turn

ADA_TOP = f"{LOCAL_TEAM_ID}:{LOCAL_DM_CHANNEL}"
# What ada's conversations read or wrote: none of it may be left anywhere after revoke.
ADA_TRACES = ("ada@example.com", "Notes from Tuesday", "budget approved", "Thursday works", ADA_TOP)
BOB, BOB_THREAD = "U0BOB", f"{LOCAL_TEAM_ID}:D0BOB"


def every_item(harness: Harness) -> dict[str, list[dict[str, Any]]]:
    ddb = harness.deployment.aws.client("dynamodb")
    tables = [lid for lid, r in harness.deployment.template.resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
    return {lid: ddb.scan(TableName=harness.deployment.physical(lid))["Items"] for lid in tables}


def checkpoint_keys(harness: Harness) -> set[str]:
    return {item["PK"]["S"] for item in every_item(harness)["CheckpointsTable"]}


def bob_remembers_something(harness: Harness) -> None:
    """Another user's conversation, which ada's revoke must leave alone."""
    table = harness.deployment.physical("CheckpointsTable")
    memory = encrypt_memory(
        TurnCachedSaver(table_name=table), KmsEnvelopeCipher(harness.deployment.physical("TokensKey", "Arn"))
    )
    assert ThreadIndex(table, 3600).claim(LOCAL_TEAM_ID, BOB, BOB_THREAD)
    with owner_scope(LOCAL_TEAM_ID, BOB):
        save_turn(memory, BOB_THREAD, "bob's mail")


def ada_has_a_conversation_and_a_pending_send(agent: Harness) -> None:
    agent.say("What did Alice send me this week?")
    agent.say("Draft a reply to Bob saying Thursday works")
    agent.say("send it")
    assert any(b.get("block_id") == "approval" for m in agent.slack.messages() for b in m.blocks)


def test_after_revoke_no_table_holds_anything_of_the_users_mail_or_conversations(agent: Harness):
    ada_has_a_conversation_and_a_pending_send(agent)
    bob_remembers_something(agent)
    before = checkpoint_keys(agent)
    assert f"CHECKPOINT_{ADA_TOP}" in before and f"THREADS_{LOCAL_TEAM_ID}#{LOCAL_USER_ID}" in before
    assert any(key.startswith(f"WRITES_{ADA_TOP}") for key in before)  # the interrupted send's pending writes

    [card] = [m for m in agent.slack.messages() if any(b.get("block_id") == "approval" for b in m.blocks)]
    assert "Disconnected *ada@example.com*" in agent.say("revoke").text

    # The waiting send was cancelled on its card, and its record erased with the rest.
    [card_now] = [m for m in agent.slack.messages() if m.ts == card.ts]
    assert "you disconnected Gmail; nothing was sent" in card_now.text
    assert not any(b.get("block_id") == "approval" for b in card_now.blocks)
    after = every_item(agent)
    assert after["ApprovalsTable"] == []
    for table, items in after.items():
        for item in items:
            assert not any(trace in repr(item) for trace in ADA_TRACES), (table, item)
    assert after["TokensTable"] == [] and after["OAuthStateTable"] == []
    # Only bob's memory is left: his checkpoint, write, payloads, index and owner record.
    assert checkpoint_keys(agent) == {key for key in before if "BOB" in key}
    assert len(checkpoint_keys(agent)) >= 5


def test_a_revoke_delivered_again_after_its_link_was_deleted_still_forgets(agent: Harness):
    """The first delivery deleted the link, then failed to forget (DynamoDB down): the
    redelivery finds no link, and must still cancel the pending send and forget."""
    ada_has_a_conversation_and_a_pending_send(agent)
    [card] = [m for m in agent.slack.messages() if any(b.get("block_id") == "approval" for b in m.blocks)]
    tokens = agent.deployment.physical("TokensTable")
    ddb = agent.deployment.aws.client("dynamodb")
    for item in ddb.scan(TableName=tokens)["Items"]:
        ddb.delete_item(TableName=tokens, Key={"pk": item["pk"]})

    assert "not connected" in agent.say("revoke").text
    [card_now] = [m for m in agent.slack.messages() if m.ts == card.ts]
    assert not any(b.get("block_id") == "approval" for b in card_now.blocks)
    assert every_item(agent)["ApprovalsTable"] == []
    assert not any(ADA_TOP in key for key in checkpoint_keys(agent))


def test_a_press_on_a_card_from_before_revoke_sends_nothing_even_after_relinking(agent: Harness):
    ada_has_a_conversation_and_a_pending_send(agent)
    [card] = [m for m in agent.slack.messages() if any(b.get("block_id") == "approval" for b in m.blocks)]
    agent.say("revoke")
    assert agent.link()[0] == 200
    agent.press(card, "approve_send")
    assert agent.gmail is not None and agent.gmail.send_count == 0


def test_linking_another_address_forgets_the_old_ones_conversations(agent: Harness):
    ada_has_a_conversation_and_a_pending_send(agent)
    agent.google.account_email = "ada@example.com"
    assert agent.link()[0] == 200  # the same address again: memory kept
    assert f"CHECKPOINT_{ADA_TOP}" in checkpoint_keys(agent)

    [card] = [m for m in agent.slack.messages() if any(b.get("block_id") == "approval" for b in m.blocks)]
    agent.google.account_email = "ada.work@example.org"
    status, html = agent.link()
    assert status == 200 and "ada.work@example.org" in html
    assert not any(ADA_TOP in key or LOCAL_USER_ID in key for key in checkpoint_keys(agent))
    [card_now] = [m for m in agent.slack.messages() if m.ts == card.ts]
    assert "linked to another address; nothing was sent" in card_now.text
    assert every_item(agent)["ApprovalsTable"] == []


def test_a_conversation_cannot_be_claimed_by_someone_else_and_so_not_erased_by_their_revoke(agent: Harness):
    agent.say("What did Alice send me this week?")
    index = ThreadIndex(agent.deployment.physical("CheckpointsTable"), 3600)
    assert not index.claim(LOCAL_TEAM_ID, BOB, ADA_TOP)
    assert index.threads(LOCAL_TEAM_ID, BOB) == [] and index.owner_of(ADA_TOP) == (LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert index.forget_user(LOCAL_TEAM_ID, BOB) == 0
    assert f"CHECKPOINT_{ADA_TOP}" in checkpoint_keys(agent)
    # A turn of bob's on ada's conversation is refused before it reads or writes anything.
    refused = agent.say("quote my last email", user=BOB)
    assert refused.ephemeral and "belongs to someone else" in refused.text
