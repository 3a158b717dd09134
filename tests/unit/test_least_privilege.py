"""Least privilege in template.yaml: every grant names its resource and its actions, the
envelope key is usable only for Mailroom's own encryption contexts, each function reads
only its secrets, and what users entrust us with is encrypted under our keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.template import Template

TEMPLATE = Template.load()
RESOURCES = TEMPLATE.resources
FUNCTIONS = list(TEMPLATE.functions())


def statements(logical_id: str) -> Iterator[dict[str, Any]]:
    for policy in RESOURCES[logical_id]["Properties"].get("Policies", []):
        yield from policy.get("Statement", [])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def names(resource: Any) -> set[str]:
    """Logical ids a Resource entry refers to (!Ref X, !GetAtt X.Arn, or a sub-resource of
    one such as !Sub ${X.Arn}/index/NAME: a table's index, never a wildcard)."""
    found = set()
    for item in as_list(resource):
        if isinstance(item, dict):
            ref = item.get("Ref") or (item.get("Fn::GetAtt") or [None])[0]
            sub = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/[\w-]+", str(item.get("Fn::Sub", "")))
            if ref:
                found.add(ref)
            elif sub:
                found.add(sub.group(1))
    return found


def grants(logical_id: str) -> dict[str, set[str]]:
    """resource logical id -> actions this function is allowed on it."""
    out: dict[str, set[str]] = {}
    for statement in statements(logical_id):
        assert statement["Effect"] == "Allow"
        for resource in names(statement["Resource"]):
            out.setdefault(resource, set()).update(as_list(statement["Action"]))
    return out


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_use_only_explicit_statements_no_broad_sam_templates(function):
    policies = RESOURCES[function]["Properties"].get("Policies", [])
    assert all(set(policy) == {"Statement"} for policy in policies), (function, policies)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_wildcard_action_and_every_statement_names_its_resources(function):
    for statement in statements(function):
        assert all("*" not in action for action in as_list(statement["Action"])), statement
        assert names(statement["Resource"]) and len(names(statement["Resource"])) == len(
            as_list(statement["Resource"])
        ), statement


def test_kms_star_only_for_the_account_root_in_key_policies():
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::KMS::Key":
            continue
        for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
            if "kms:*" in as_list(statement["Action"]):
                assert statement["Principal"] == {
                    "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
                }
            else:
                assert "Service" in statement["Principal"] and "Condition" in statement, (logical_id, statement)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_envelope_key_is_usable_only_for_an_owners_mailroom_context(function):
    for statement in statements(function):
        if "TokensKey" not in names(statement["Resource"]):
            continue
        condition = statement["Condition"]
        assert condition["StringEquals"]["kms:EncryptionContext:app"] == "mailroom"
        assert set(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) <= {
            "app",
            "purpose",
            "slack_team",
            "slack_user",
            "aws-crypto-public-key",  # the Encryption SDK's signing suites add it
        }
        assert condition["Null"] == {
            "kms:EncryptionContext:slack_team": "false",
            "kms:EncryptionContext:slack_user": "false",
        }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_storage_key_is_used_only_through_the_services(function):
    for statement in statements(function):
        if "StorageKey" in names(statement["Resource"]):
            assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement


def test_each_function_holds_exactly_what_it_uses():
    ingress, worker, callback = (grants(f) for f in ("IngressFunction", "WorkerFunction", "OAuthCallbackFunction"))
    # The ingress: one queue and the signing secret. No table, no envelope key.
    assert set(ingress) == {"MessagesQueue", "SlackSigningSecret", "StorageKey"}
    assert ingress["MessagesQueue"] == {"sqs:SendMessage"}
    # The callback writes links but never decrypts a token.
    assert callback["TokensKey"] == {"kms:GenerateDataKey"}
    assert callback["TokensTable"] == {"dynamodb:PutItem", "dynamodb:GetItem"}
    assert "dynamodb:Scan" not in set().union(*worker.values(), *callback.values())
    # Only the callback can create a link; only the worker can delete one.
    assert "dynamodb:PutItem" not in worker["TokensTable"] and "dynamodb:DeleteItem" not in callback["TokensTable"]
    secrets = {lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert secrets & set(ingress) == {"SlackSigningSecret"}
    assert secrets & set(worker) == {"SlackBotSecret", "GoogleOAuthSecret", "OpenAISecret"}
    assert secrets & set(callback) == {"SlackBotSecret", "SlackOidcSecret", "GoogleOAuthSecret"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_is_told_only_the_secrets_it_may_read(function):
    env = TEMPLATE.functions()[function].environment
    told = {value["Ref"] for name, value in env.items() if name.endswith("_SECRET_ARN")}
    readable = {r for r in grants(function) if RESOURCES[r]["Type"] == "AWS::SecretsManager::Secret"}
    assert told == readable


def test_what_users_entrust_us_with_is_under_our_keys_and_the_api_is_logged():
    for logical_id, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert props["SSESpecification"] == {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": {"Ref": "StorageKey"},
            }, logical_id
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
            assert props["KmsMasterKeyId"] == {"Ref": "StorageKey"}, logical_id
        if resource["Type"] in ("AWS::Logs::LogGroup",):
            assert props["KmsKeyId"] == {"Fn::GetAtt": ["StorageKey", "Arn"]}, logical_id
        if resource["Type"] == "AWS::SecretsManager::Secret":
            assert props["KmsKeyId"] == {"Ref": "StorageKey"}, logical_id
    access = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "querystring" not in access["Format"].lower()  # OAuth codes and states travel there
