"""The whole of Mailroom on one machine, with no accounts.

Embedded AWS (moto's server) provisioned from template.yaml, emulators of Slack and
Google on loopback, each function in its own warm process with exactly the
environment the template gives it, an API Gateway-like front for the HTTP routes and
an SQS poller for the worker, and the functions' schedules. Used by `make demo`, `make dev` and the e2e tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from infra.local.aws import EmbeddedAws, provision
from infra.local.emulators.gmail import GmailMailbox, SeededIds
from infra.local.emulators.google import GoogleEmulator
from infra.local.emulators.openai import OpenAIEmulator
from infra.local.emulators.slack import SlackEmulator
from infra.local.faults import AwsFaultProxy
from infra.local.front import LocalFront
from infra.local.functions import FunctionPool, LocalFunction
from infra.local.poller import QueuePoller
from infra.local.schedule import Schedule
from infra.local.slack_requests import LOCAL_BOT_USER_ID, LOCAL_SIGNING_SECRET, LOCAL_TEAM_ID, LOCAL_USER_ID
from infra.local.template import Template

# Which of the template's secrets holds each credential (a secret per audience).
SECRETS_BY_RESOURCE = {
    "SlackSigningSecret": ("SLACK_SIGNING_SECRET",),
    "SlackBotSecret": ("SLACK_BOT_TOKEN",),
    "SlackOidcSecret": ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"),
    "GoogleOAuthSecret": ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"),
    "OpenAISecret": ("OPENAI_API_KEY",),
}
SECRET_NAMES = tuple(name for names in SECRETS_BY_RESOURCE.values() for name in names)


@dataclass
class StackOptions:
    # Real values (from .env for `make dev`); a Slack or Google secret given here
    # replaces that emulator, and its endpoint variable may point at the real service.
    secrets: Mapping[str, str] = field(default_factory=dict)
    endpoints: Mapping[str, str] = field(default_factory=dict)
    front_port: int = 0
    retry_delay: int = 2
    log_path: Path | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Put infra/local/faults.py's proxy between the functions and embedded AWS, so that
    # tests can make DynamoDB, KMS, Secrets Manager or SQS calls fail (`stack.aws_faults`).
    fault_proxy: bool = False
    # Extra environment for every function (e.g. AWS_RETRY_MODE for the fault matrix).
    function_env: Mapping[str, str] = field(default_factory=dict)
    # Execution environments per function (logical id -> count), as Lambda scales out;
    # a queue-fed function gets one poller per environment. Default: one each.
    concurrency: Mapping[str, int] = field(default_factory=dict)
    # The stage and resource-name prefix. moto keeps one state per process, so stacks
    # that run side by side in one process (the e2e stack and the load or fault stack)
    # need different names: same names would share queues, tables and the secret.
    name: str = "local"
    # Fire the template's schedules at their rate (`make dev`, like the deployed stack).
    # Off by default: a tick in the middle of a test would be a call it did not make;
    # tests fire one with `fire_schedule`.
    run_schedules: bool = False


class LocalStack:
    _running = 0  # stacks started and not stopped in this process

    def __init__(self, options: StackOptions | None = None):
        self.options = options or StackOptions()
        self.aws = EmbeddedAws()
        self.template = Template.load(parameter_overrides={"Stage": self.options.name, **self.options.parameters})
        self.slack: SlackEmulator | None = None
        self.google: GoogleEmulator | None = None
        self.gmail: GmailMailbox | None = None
        self.seeded: SeededIds | None = None
        self.openai: OpenAIEmulator | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pools: dict[str, FunctionPool] = {}  # functions given more than one environment
        self.front: LocalFront | None = None
        self.poller: QueuePoller | None = None
        self.pollers: list[QueuePoller] = []
        self.aws_faults: AwsFaultProxy | None = None
        self.schedules: list[Schedule] = []
        self._log: IO[str] | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.aws.start()
        if LocalStack._running == 0:  # never wipe the resources of a stack still running
            self.aws.reset()
        LocalStack._running += 1
        provision(self.template, self.aws, stack_name=f"mailroom-{self.options.name}")
        secrets = dict(self.options.secrets)
        endpoints = dict(self.options.endpoints)
        if "SLACK_BOT_TOKEN" not in secrets:
            self.slack = SlackEmulator(bot_user_id=LOCAL_BOT_USER_ID, team_id=LOCAL_TEAM_ID).start()
            assert self.slack is not None
            secrets.setdefault("SLACK_SIGNING_SECRET", LOCAL_SIGNING_SECRET)
            secrets["SLACK_BOT_TOKEN"] = self.slack.bot_token
            secrets["SLACK_CLIENT_ID"] = self.slack.client_id
            secrets["SLACK_CLIENT_SECRET"] = self.slack.client_secret
            endpoints["SLACK_API_URL"] = self.slack.api_url
            endpoints["SLACK_OIDC_AUTHORIZE_URL"] = self.slack.oidc_authorize_url
            # The browser the e2e tests and the demo drive is signed in to Slack as the local user.
            self.slack.sign_in_as(LOCAL_USER_ID, LOCAL_TEAM_ID)
        if "GOOGLE_CLIENT_ID" not in secrets:
            self.google = GoogleEmulator().start()
            assert self.google is not None
            secrets["GOOGLE_CLIENT_ID"] = self.google.client_id
            secrets["GOOGLE_CLIENT_SECRET"] = self.google.client_secret
            endpoints |= {
                "GOOGLE_AUTH_URI": self.google.auth_uri,
                "GOOGLE_TOKEN_URI": self.google.token_uri,
                "GOOGLE_REVOKE_URI": self.google.revoke_uri,
                "GMAIL_API_URL": self.google.gmail_api_url,
            }
            self.gmail = GmailMailbox(self.google)
            self.seeded = self.gmail.seed()
        if "OPENAI_API_KEY" not in secrets:
            self.openai = OpenAIEmulator().start()
            assert self.openai is not None
            secrets["OPENAI_API_KEY"] = self.openai.api_key
            endpoints["OPENAI_BASE_URL"] = self.openai.base_url
        self._store_secrets(secrets)

        if self.options.log_path is not None:
            self.options.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.options.log_path.open("a", buffering=1)
        aws_env = self.aws.env
        if self.options.fault_proxy:
            self.aws_faults = AwsFaultProxy(self.aws.endpoint_url).start()
            aws_env = {**aws_env, "AWS_ENDPOINT_URL": self.aws_faults.url}
        base_env = {
            **aws_env,
            **endpoints,
            # No X-Ray daemon here; everything else runs as deployed.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.options.function_env,
        }
        layers = self.template.layer_dirs()
        for lid, spec in self.template.functions().items():
            env = {name: str(self.template.resolve(value)) for name, value in spec.environment.items()}
            size = self.options.concurrency.get(lid, 1)
            if size > 1:
                self.pools[lid] = FunctionPool(spec, base_env | env, layers, self._log, size)
                self.functions[lid] = self.pools[lid].members[0]
            else:
                self.functions[lid] = LocalFunction(spec, base_env | env, layers, self._log)

        routes = {(r.method, r.path): self.invocable(r.function) for r in self.template.http_routes()}
        self.front = LocalFront(routes, port=self.options.front_port).start()
        for source in self.template.queue_sources():
            queue = self.template.physical[source.queue_logical_id]
            environments = self.options.concurrency.get(source.function, 1)
            for _ in range(environments):
                poller = QueuePoller(
                    self.aws.client("sqs"),
                    queue["QueueUrl"],
                    queue["Arn"],
                    self.invocable(source.function),
                    batch_size=source.batch_size,
                    retry_delay=self.options.retry_delay,
                    after_crash=self.expire_in_progress,
                    shared=environments > 1,
                ).start()
                self.pollers.append(poller)
            self.poller = self.pollers[0]
        for timer in self.template.schedule_sources():
            schedule = Schedule(timer, self.functions[timer.function])
            self.schedules.append(schedule.start() if self.options.run_schedules else schedule)
        return self

    def stop(self) -> None:
        for schedule in self.schedules:
            schedule.stop()  # a no-op for one never started
        for poller in self.pollers:
            poller.stop()
        if self.front:
            self.front.stop()
        for pool in self.pools.values():
            pool.stop()
        for function in self.functions.values():
            function.stop()
        for emulator in (self.slack, self.google, self.openai):
            if emulator is not None:
                emulator.stop()
        if self.aws_faults:
            self.aws_faults.stop()
        self.aws.stop()
        LocalStack._running -= 1
        if self._log:
            self._log.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------
    def invocable(self, logical_id: str) -> LocalFunction | FunctionPool:
        """What runs a function's invocations: its pool if it has several environments."""
        return self.pools.get(logical_id) or self.functions[logical_id]

    @property
    def url(self) -> str:
        assert self.front is not None
        return self.front.url

    def physical(self, logical_id: str, attribute: str = "Ref") -> str:
        return self.template.physical[logical_id][attribute]

    def queue_depth(self, logical_id: str = "MessagesQueue") -> int:
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.physical(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def is_drained(self, logical_id: str = "MessagesQueue") -> bool:
        """Nothing queued or in flight. moto counts visible and in-flight messages at two
        instants: a message that turns visible again between them (its redelivery after
        a failed try) is in neither count, and the queue reads empty for that one call.
        So empty is read twice, apart; a message cannot turn visible twice within that."""
        if self.queue_depth(logical_id) > 0:
            return False
        time.sleep(0.05)
        return self.queue_depth(logical_id) == 0

    def wait_until_drained(self, timeout: float = 30.0) -> None:
        """Block until the worker has finished (or dead-lettered) everything queued."""
        deadline = time.monotonic() + timeout
        while not self.is_drained():
            if time.monotonic() > deadline:
                raise AssertionError(f"queue not drained after {timeout} s: {self.queue_depth()} messages left")
            time.sleep(0.1)

    def expire_in_progress(self) -> None:
        """Expire every in-progress idempotency record. A crashed invocation leaves its
        record in progress until the invocation's deadline (up to the function's
        timeout); SQS brings the message back only after the visibility timeout (6x
        that), by when the record has expired. The poller's fast redelivery must not
        meet a record that, for real, would be gone."""
        if "IdempotencyTable" not in self.template.physical:
            return
        ddb = self.aws.client("dynamodb")
        table = self.physical("IdempotencyTable")
        past = str(int(time.time() * 1000) - 1)
        for item in ddb.scan(TableName=table)["Items"]:
            if item.get("status", {}).get("S") == "INPROGRESS":
                ddb.update_item(
                    TableName=table,
                    Key={"id": item["id"]},
                    UpdateExpression="SET in_progress_expiration = :past",
                    ExpressionAttributeValues={":past": {"N": past}},
                )

    def fire_schedule(self, function: str) -> list[Any]:
        """Run each schedule of `function` once now (EventBridge's next tick, without waiting)."""
        return [schedule.fire() for schedule in self.schedules if schedule.source.function == function]

    def scan(self, logical_id: str) -> list[dict[str, Any]]:
        return list(self.aws.client("dynamodb").scan(TableName=self.physical(logical_id))["Items"])

    def _store_secrets(self, values: Mapping[str, str]) -> None:
        for resource, names in SECRETS_BY_RESOURCE.items():
            self.aws.client("secretsmanager").put_secret_value(
                SecretId=self.physical(resource),
                SecretString=json.dumps({name: values.get(name, "") for name in names}),
            )
