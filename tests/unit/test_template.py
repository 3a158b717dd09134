"""template.yaml is the single truth of what each function needs: check it says enough."""

from __future__ import annotations

import dataclasses

import pytest

from infra.local.template import Template
from mailroom import ingress_settings
from mailroom.settings import CallbackSettings, EnvironmentModel, IngressSettings, WorkerSettings

TEMPLATE = Template.load()
SETTINGS: dict[str, type[EnvironmentModel]] = {
    "IngressFunction": IngressSettings,
    "WorkerFunction": WorkerSettings,
    "OAuthCallbackFunction": CallbackSettings,
}


def placeholder_environment(logical_id: str) -> dict[str, str]:
    """The function's variables, with every intrinsic replaced by a stand-in value."""
    env = TEMPLATE.functions()[logical_id].environment
    return {name: value if isinstance(value, str) else f"<{name}>" for name, value in env.items()}


@pytest.mark.parametrize(("logical_id", "model"), SETTINGS.items())
def test_each_function_gets_every_setting_it_requires(logical_id, model):
    required = {name.upper() for name, field in model.model_fields.items() if field.is_required()}
    missing = required - placeholder_environment(logical_id).keys()
    assert not missing, f"{logical_id} needs {missing} in template.yaml"


def test_the_ingress_reads_its_settings_like_the_pydantic_model_does():
    """The ingress's light settings (no pydantic, for its cold start) must keep the names,
    defaults and required fields of settings.IngressSettings for everything they hold."""
    light = {f.name: f for f in dataclasses.fields(ingress_settings.IngressSettings)}
    model = IngressSettings.model_fields
    # The shared settings' other secrets and the Slack API URL are the worker's and the
    # callback's; a field added to IngressSettings must be added to the light one too.
    not_read_by_the_ingress = {
        "slack_bot_secret_arn",
        "slack_oidc_secret_arn",
        "google_oauth_secret_arn",
        "openai_secret_arn",
        "slack_client_id",
        "slack_client_secret",
        "slack_bot_token",
        "google_client_id",
        "google_client_secret",
        "openai_api_key",
        "slack_api_url",
    }
    assert light.keys() == model.keys() - not_read_by_the_ingress
    for name, field in light.items():
        required = field.default is dataclasses.MISSING
        assert required == model[name].is_required(), name
        if not required:
            default = model[name].default
            default = default.get_secret_value() if hasattr(default, "get_secret_value") else default
            assert field.default == default, name
    env = placeholder_environment("IngressFunction") | {"SLACK_SIGNING_SECRET": "s", "MAX_BODY_BYTES": "100"}
    parsed = ingress_settings.IngressSettings.from_environment(env)
    reference = IngressSettings.from_environment(env)
    for name in light:
        value = getattr(reference, name)
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        assert getattr(parsed, name) == value, name


def test_every_function_has_a_handler_file_and_a_log_group_with_retention():
    resources = TEMPLATE.resources
    for logical_id, spec in TEMPLATE.functions().items():
        module = spec.handler.split(".")[0]
        assert (spec.code_dir / f"{module}.py").is_file(), logical_id
        log_group = resources[logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert "RetentionInDays" in resources[log_group]["Properties"]


def test_the_queue_hides_a_message_for_six_worker_timeouts():
    worker_timeout = TEMPLATE.functions()["WorkerFunction"].timeout
    queue = TEMPLATE.resources["MessagesQueue"]["Properties"]
    assert queue["FifoQueue"] is True and queue["ContentBasedDeduplication"] is False
    assert queue["VisibilityTimeout"] == 6 * worker_timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["MessagesDeadLetterQueue", "Arn"]}


def test_the_worker_reports_partial_batch_failures():
    [source] = [
        e["Properties"]
        for e in TEMPLATE.resources["WorkerFunction"]["Properties"]["Events"].values()
        if e["Type"] == "SQS"
    ]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumConcurrency" in source["ScalingConfig"]
    # One conversation per invocation: a turn never waits for another one's time.
    assert source["BatchSize"] == 1


def test_the_worker_keeps_a_margin_for_saving_and_answering_that_fits_its_timeout():
    from mailroom.timeouts import MIN_CALL_SECONDS

    worker_timeout = TEMPLATE.functions()["WorkerFunction"].timeout
    margin = WorkerSettings.model_fields["agent_time_margin_seconds"].default
    # Longer than the longest single wrap-up call (Slack's client timeout, 10 s) ...
    assert margin > 10
    # ... and leaving the turn itself most of the invocation.
    assert worker_timeout - margin > 2 * MIN_CALL_SECONDS + 60


def test_policies_name_their_resources_and_grant_no_wildcard_actions():
    for logical_id in TEMPLATE.functions():
        for policy in TEMPLATE.resources[logical_id]["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), (logical_id, actions)
                assert statement["Resource"] != "*", logical_id


def test_tables_that_hold_expiring_records_have_ttl():
    expected = {"OAuthStateTable": "expires_at", "IdempotencyTable": "expiration", "CheckpointsTable": "ttl"}
    for logical_id, attribute in expected.items():
        spec = TEMPLATE.resources[logical_id]["Properties"]["TimeToLiveSpecification"]
        assert spec == {"AttributeName": attribute, "Enabled": True}


def test_the_outputs_give_the_urls_to_paste_into_slack_and_google():
    outputs = TEMPLATE.body["Outputs"]
    for name, path in [
        ("SlackEventsUrl", "/slack/events"),
        ("SlackInteractionsUrl", "/slack/interactions"),
        ("GoogleRedirectUri", "/auth/callback"),
        ("SlackRedirectUrl", "/auth/slack/callback"),
    ]:
        assert outputs[name]["Value"]["Fn::Sub"].endswith(path)
    routes = {(r.method, r.path): r.function for r in TEMPLATE.http_routes()}
    assert routes == {
        ("POST", "/slack/events"): "IngressFunction",
        ("POST", "/slack/interactions"): "IngressFunction",
        ("GET", "/auth/start"): "OAuthCallbackFunction",
        ("GET", "/auth/slack/callback"): "OAuthCallbackFunction",
        ("GET", "/auth/callback"): "OAuthCallbackFunction",
    }


def test_the_expiry_sweep_runs_on_the_worker_every_ten_minutes_over_a_sparse_index_only_it_may_query():
    from infra.local.template import ScheduleSource

    assert TEMPLATE.schedule_sources() == [ScheduleSource("WorkerFunction", "ExpiredApprovals", 600)]
    [index] = [
        i
        for i in TEMPLATE.resources["ApprovalsTable"]["Properties"]["GlobalSecondaryIndexes"]
        if i["IndexName"] == "pending-by-expiry"
    ]
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["pending", "expires_at"]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    granted = {
        (function, statement["Action"], statement["Resource"]["Fn::Sub"])
        for function in ("IngressFunction", "WorkerFunction", "OAuthCallbackFunction")
        for policy in TEMPLATE.resources[function]["Properties"].get("Policies", [])
        for statement in policy["Statement"]
        if "pending-by-expiry" in str(statement["Resource"])
    }
    assert granted == {("WorkerFunction", "dynamodb:Query", "${ApprovalsTable.Arn}/index/pending-by-expiry")}
