"""The checkov gate: what counts as new, and a skip list that stays justified and true."""

from __future__ import annotations

import yaml

from infra.local.template import Template
from infra.scripts.checkov_gate import SKIPS, failures, skipped


def test_failures_are_read_per_check_and_resource():
    report = {
        "results": {
            "failed_checks": [
                {"check_id": "CKV_AWS_28", "resource": "AWS::DynamoDB::Table.UsageTable"},
                {"check_id": "CKV_AWS_117", "resource": "AWS::Serverless::Function.WorkerFunction"},
            ]
        }
    }
    assert failures([report]) == {("CKV_AWS_28", "UsageTable"), ("CKV_AWS_117", "WorkerFunction")}
    assert failures({"results": {}}) == set()


def test_every_skip_has_a_reason_and_names_a_resource_of_the_template():
    resources = Template.load().resources
    for entry in yaml.safe_load(SKIPS.read_text()):
        assert len(entry["reason"].split()) >= 10, entry["check"]
        assert set(entry["resources"]) <= resources.keys(), entry
    assert ("CKV_AWS_28", "TokensTable") not in skipped()  # the links keep point-in-time recovery
