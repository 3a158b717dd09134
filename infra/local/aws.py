"""Embedded AWS: moto's server on loopback, provisioned from `template.yaml`.

Creates the tables, queues, KMS key and alias, and the app secret that the template
declares, with the properties it gives them, then records each resource's physical
values (what `Ref` and `Fn::GetAtt` return) so that function environments resolve
exactly as CloudFormation would resolve them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

from infra.local.template import Template, Unresolvable

REGION = "us-east-1"
# moto accepts any credentials; these only keep boto3 from looking for real ones.
LOCAL_AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class EmbeddedAws:
    """moto's server in a thread of this process, reachable over HTTP by any process."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise here
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Forget every resource. moto keeps its state per process, shared by all its
        servers in it, so a stack that starts clean must say so."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (our own loopback server)

    def stop(self) -> None:
        self._server.stop()

    @property
    def env(self) -> dict[str, str]:
        return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]  # any service name
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def aws_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily point this process's boto3 at embedded AWS."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_PROVISIONED_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::SecretsManager::Secret",
)


def provision(template: Template, aws: EmbeddedAws, stack_name: str = "mailroom-local") -> None:
    """Create every stateful resource of the template, dependencies first."""
    pending = {lid: res for lid, res in template.resources.items() if res.get("Type") in _PROVISIONED_TYPES}
    while pending:
        progressed = False
        for lid, res in list(pending.items()):
            try:
                props = template.resolve(res.get("Properties", {}))
            except Unresolvable:
                continue  # depends on a resource not created yet
            template.physical[lid] = _CREATORS[res["Type"]](aws, f"{stack_name}-{lid}", props)
            del pending[lid]
            progressed = True
        if not progressed:
            raise RuntimeError(f"cannot resolve the properties of {sorted(pending)}")


def _create_table(aws: EmbeddedAws, name: str, props: dict[str, Any]) -> dict[str, str]:
    ddb = aws.client("dynamodb")
    table_name = props.get("TableName", name)
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        **({"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    arn = ddb.describe_table(TableName=table_name)["Table"]["TableArn"]
    return {"Ref": table_name, "Arn": arn}


_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
)


def _create_queue(aws: EmbeddedAws, name: str, props: dict[str, Any]) -> dict[str, str]:
    sqs = aws.client("sqs")
    queue_name = props.get("QueueName") or (name + (".fifo" if props.get("FifoQueue") else ""))
    attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": queue_name, "QueueUrl": url}


def _attribute(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _create_key(aws: EmbeddedAws, name: str, props: dict[str, Any]) -> dict[str, str]:
    metadata = aws.client("kms").create_key(Description=props.get("Description", name))["KeyMetadata"]
    return {"Ref": metadata["KeyId"], "Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}


def _create_alias(aws: EmbeddedAws, name: str, props: dict[str, Any]) -> dict[str, str]:
    aws.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return {"Ref": props["AliasName"]}


def _create_secret(aws: EmbeddedAws, name: str, props: dict[str, Any]) -> dict[str, str]:
    created = aws.client("secretsmanager").create_secret(
        Name=props.get("Name", name), SecretString=props.get("SecretString", "{}")
    )
    return {"Ref": created["ARN"], "Id": created["ARN"], "Name": created["Name"]}


_CREATORS = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SQS::Queue": _create_queue,
    "AWS::KMS::Key": _create_key,
    "AWS::KMS::Alias": _create_alias,
    "AWS::SecretsManager::Secret": _create_secret,
}
