"""Composition roots: build each function's object graph from its settings.

Handlers call these once per execution environment (lazily, on the first request) and
reuse the result while warm. Heavy libraries (Google's clients, the Encryption SDK)
are imported only when a command that needs them first runs, so `hello` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from mailroom.adapters.google_oauth import GoogleOAuth
    from mailroom.adapters.slack_chat import SlackChat
    from mailroom.agent.runner import AgentChat
    from mailroom.approval_sweep import ExpirySweep
    from mailroom.commands import Command
    from mailroom.forget import Forgetter, ThreadIndex
    from mailroom.gmail_link import GmailLinkCommands
    from mailroom.ingress import Ingress
    from mailroom.ingress_settings import IngressSettings
    from mailroom.oauth_callback import OAuthCallback
    from mailroom.secrets import SecretStore
    from mailroom.settings import CallbackSettings, CommonSettings, WorkerSettings
    from mailroom.worker import Worker

T = TypeVar("T")


class Lazy(Generic[T]):
    """Build a value on first use and keep it (for the life of a warm Lambda)."""

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._factory()
        return self._value


def build_ingress(settings: IngressSettings | None = None) -> Ingress:
    """The ingress reads only the signing secret, through a lighter path than the other
    functions (no pydantic, no Powertools Parameters): its cold start is the ack."""
    from mailroom.adapters.app_secret import AppSecret
    from mailroom.adapters.sqs_queue import SqsQueue
    from mailroom.ingress import Ingress
    from mailroom.ingress_settings import IngressSettings

    settings = settings or IngressSettings.from_environment()
    secrets = AppSecret(
        settings.slack_signing_secret_arn,
        overrides={"SLACK_SIGNING_SECRET": settings.slack_signing_secret},
        max_age_seconds=settings.secrets_max_age_seconds,
    )
    return Ingress(settings, secrets, SqsQueue(settings.queue_url))


def _slack_chat(settings: CommonSettings, secrets: SecretStore) -> SlackChat:
    from mailroom.adapters.slack_chat import SlackChat, make_web_client

    return SlackChat(make_web_client(secrets.get("SLACK_BOT_TOKEN"), settings.slack_api_url))


def _google_oauth(settings: WorkerSettings | CallbackSettings, secrets: SecretStore) -> GoogleOAuth:
    from mailroom.adapters.google_oauth import GoogleOAuth, GoogleOAuthClient

    client = GoogleOAuthClient(
        client_id=secrets.get("GOOGLE_CLIENT_ID"),
        client_secret=secrets.get("GOOGLE_CLIENT_SECRET"),
        auth_uri=settings.google_auth_uri,
        token_uri=settings.google_token_uri,
        revoke_uri=settings.google_revoke_uri,
    )
    return GoogleOAuth(client, settings.gmail_api_url)


def build_worker(settings: WorkerSettings | None = None, *, send_step: Callable[[str], None] | None = None) -> Worker:
    """`send_step` is called at each step boundary of an approved send (tests crash there)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from mailroom.adapters.sqs_queue import SqsQueue
    from mailroom.reply_once import OnceChat
    from mailroom.secrets import SecretStore
    from mailroom.settings import WorkerSettings
    from mailroom.turn_records import TurnRecords
    from mailroom.worker import CommandRouter, InvocationClock, Worker

    resolved = settings or WorkerSettings.from_environment()
    clock = InvocationClock()
    secrets = SecretStore(resolved)
    slack = _slack_chat(resolved, secrets)
    # Every reply marked with the event it answers, and posted once (mailroom.reply_once).
    chat = OnceChat(slack)
    records = TurnRecords(resolved.usage_table, resolved.turn_record_ttl_seconds)

    oauth = Lazy(lambda: _google_oauth(resolved, secrets))
    index = Lazy(lambda: _thread_index(resolved.checkpoints_table, resolved.checkpoint_ttl_seconds))

    def gmail_link() -> GmailLinkCommands:
        from mailroom.gmail_link import GmailLinkCommands
        from mailroom.oauth_state import OAuthStateStore
        from mailroom.vault import TokenVault

        return GmailLinkCommands(
            chat=chat,
            links=TokenVault(resolved.tokens_table, resolved.tokens_key_arn),
            states=OAuthStateStore(resolved.oauth_state_table),
            oauth=oauth(),
            forgetter=_forgetter(index(), resolved.approvals_table, slack),
        )

    link = Lazy(gmail_link)

    def agent_chat() -> AgentChat:
        from mailroom.adapters.approval_table import DynamoApprovalStore
        from mailroom.agent.checkpoints import TurnCachedSaver
        from mailroom.agent.encrypted_memory import KmsEnvelopeCipher, encrypt_memory
        from mailroom.agent.runner import AgentChat, AgentSettings
        from mailroom.rate_limit import RateLimiter

        return AgentChat(
            chat=chat,
            links=link(),
            oauth=oauth(),
            # Memory sealed for its owner with a data key of the same KMS key as the tokens.
            checkpointer=encrypt_memory(
                TurnCachedSaver(table_name=resolved.checkpoints_table, ttl_seconds=resolved.checkpoint_ttl_seconds),
                KmsEnvelopeCipher(resolved.tokens_key_arn),
            ),
            settings=AgentSettings(
                model=resolved.openai_model,
                temperature=resolved.openai_temperature,
                api_key=lambda: secrets.get("OPENAI_API_KEY"),
                gmail_api_url=resolved.gmail_api_url,
                keep_turns=resolved.agent_keep_turns,
                time_margin_seconds=resolved.agent_time_margin_seconds,
                approval_ttl_seconds=resolved.approval_ttl_seconds,
                max_send_attempts=resolved.queue_max_receive_count,
                gmail_timeout_seconds=resolved.gmail_timeout_seconds,
            ),
            seconds_left=clock.seconds_left,
            rate_limiter=RateLimiter(resolved.usage_table, resolved.chat_rate_limit, resolved.chat_rate_window_seconds),
            approvals=DynamoApprovalStore(resolved.approvals_table),
            **({"send_step": send_step} if send_step else {}),
            surface=slack,
            replies=chat,
        )

    agent = Lazy(agent_chat)
    expiry_sweep = Lazy(lambda: _expiry_sweep(resolved.approvals_table, slack, clock.seconds_left))

    def prompts(command: Command) -> None:
        # Light: a DynamoDB read of whether the user is linked, one Slack call.
        from mailroom.slack.prompts import offer_prompts
        from mailroom.vault import TokenVault

        offer_prompts(slack, command, TokenVault(resolved.tokens_table, resolved.tokens_key_arn).email_of)

    def feedback(command: Command) -> None:
        from mailroom.feedback import FeedbackRecords, take_feedback

        take_feedback(FeedbackRecords(resolved.usage_table), command)

    def chat_turn(command: Command) -> None:
        if command.is_direct_message and command.thread_ts:
            # Before the agent's libraries load (seconds on a cold worker): the user sees
            # at once that the question was taken.
            from mailroom.slack.presenter import first_status

            first_status(slack, command.channel_id, command.thread_ts)
        _as_owner(command, agent(), index(), slack)

    handlers = {
        "prompts": prompts,
        "answer_feedback": feedback,
        "auth": lambda command: link().auth(command),
        "status": lambda command: link().status(command),
        "revoke": lambda command: link().revoke(command),
        "chat": chat_turn,
        "approve_send": lambda command: _as_presser(command, agent().resume),
        "cancel_send": lambda command: _as_presser(command, agent().resume),
        "edit_send": lambda command: _as_presser(command, agent().resume),
        "edit_send_submit": lambda command: _as_presser(command, agent().resume),
    }
    return Worker(
        chat,
        CommandRouter(chat, handlers),
        DynamoDBPersistenceLayer(table_name=resolved.idempotency_table),
        idempotency_ttl_seconds=resolved.idempotency_ttl_seconds,
        max_receive_count=resolved.queue_max_receive_count,
        clock=clock,
        records=records,
        queue=SqsQueue(resolved.queue_url) if resolved.queue_url else None,
        give_up=lambda command: _as_presser(command, agent().abandon_press) if command.name in _SEND_PRESSES else None,
        sweep=lambda: expiry_sweep().run(),
    )


# The presses on an approval card (the ones a last failed delivery must end).
_SEND_PRESSES = frozenset({"approve_send", "cancel_send", "edit_send", "edit_send_submit"})


def _expiry_sweep(approvals_table: str, chat: SlackChat, seconds_left: Callable[[], float]) -> ExpirySweep:
    from mailroom.adapters.approval_table import DynamoApprovalStore
    from mailroom.approval_sweep import ExpirySweep

    return ExpirySweep(DynamoApprovalStore(approvals_table), chat, seconds_left=seconds_left)


def _thread_index(table_name: str, ttl_seconds: int) -> ThreadIndex:
    from mailroom.forget import ThreadIndex

    return ThreadIndex(table_name, ttl_seconds)


def _forgetter(index: ThreadIndex, approvals_table: str, chat: SlackChat) -> Forgetter:
    from mailroom.adapters.approval_table import DynamoApprovalStore
    from mailroom.approval_forget import ApprovalForgetter
    from mailroom.forget import Forgetter

    return Forgetter(index, approvals=ApprovalForgetter(DynamoApprovalStore(approvals_table), chat))


def _as_owner(command: Command, run: Callable[[Command], None], index: ThreadIndex, chat: SlackChat) -> None:
    """Run a chat turn with its memory sealed for, and opened only by, this user, once
    the conversation is recorded as theirs (a conversation of someone else's is refused)."""
    from mailroom import replies
    from mailroom.agent.encrypted_memory import owner_scope

    if not index.claim(command.team_id, command.user_id, command.conversation_id):
        chat.post_ephemeral(
            command.channel_id, command.user_id, replies.conversation_not_yours(), thread_ts=command.thread_ts
        )
        return
    with owner_scope(command.team_id, command.user_id):
        run(command)


def _as_presser(command: Command, run: Callable[[Command], None]) -> None:
    """Run a press with memory opened as the presser's. The press is routed by its
    approval record, which is checked to be the presser's own before any memory is read,
    so someone else's press never opens (or needs) the owner's memory."""
    from mailroom.agent.encrypted_memory import owner_scope

    with owner_scope(command.team_id, command.user_id):
        run(command)


def build_oauth_callback(settings: CallbackSettings | None = None) -> OAuthCallback:
    from mailroom.adapters.slack_oidc import SlackOpenIdConnect
    from mailroom.oauth_callback import OAuthCallback
    from mailroom.oauth_state import OAuthStateStore
    from mailroom.reply_once import OnceChat
    from mailroom.secrets import SecretStore
    from mailroom.settings import CallbackSettings
    from mailroom.vault import TokenVault

    resolved = settings or CallbackSettings.from_environment()
    secrets = SecretStore(resolved)
    slack = _slack_chat(resolved, secrets)
    # Its message in the user's thread is marked as answering no queued event, so a
    # redelivered question there never takes it for a stream it lost (mailroom.reply_once).
    chat = OnceChat(slack)
    forgetter = Lazy(
        lambda: _forgetter(
            _thread_index(resolved.checkpoints_table, resolved.checkpoint_ttl_seconds), resolved.approvals_table, slack
        )
    )
    return OAuthCallback(
        states=OAuthStateStore(resolved.oauth_state_table),
        oauth=_google_oauth(resolved, secrets),
        links=TokenVault(resolved.tokens_table, resolved.tokens_key_arn),
        chat=chat,
        slack=SlackOpenIdConnect(
            client_id=lambda: secrets.get("SLACK_CLIENT_ID"),
            client_secret=lambda: secrets.get("SLACK_CLIENT_SECRET"),
            authorize_url=resolved.slack_oidc_authorize_url,
            api_url=resolved.slack_api_url,
        ),
        forget=lambda team_id, user_id: forgetter().forget(team_id, user_id, reason="relinked"),
    )
