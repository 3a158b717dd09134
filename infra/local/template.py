"""Read `template.yaml` as the local stack's single source of what exists.

Parses CloudFormation's short-form tags, applies `Globals`, and resolves the
intrinsics that appear in resource properties and function environments (`Ref`,
`Fn::GetAtt`, `Fn::Sub`, `Fn::If` with simple conditions) against the physical
resources the local stack created.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into {"Ref": "X"} and `!Sub s` into {"Fn::Sub": s}."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)


class Unresolvable(LookupError):
    """An intrinsic refers to something the local stack does not have (yet)."""


@dataclass
class HttpRoute:
    method: str
    path: str
    function: str


@dataclass
class QueueSource:
    function: str
    queue_logical_id: str
    batch_size: int


@dataclass
class ScheduleSource:
    function: str
    name: str  # the event's name in the template
    seconds: int  # from `rate(N unit)`


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any] = field(default_factory=dict)


# What Ref and GetAtt give for each resource type, from the physical resource record.
RefValue = Callable[[Mapping[str, Any]], str]


class Template:
    def __init__(self, body: dict[str, Any], parameter_overrides: Mapping[str, str] | None = None):
        self.body = body
        self.resources: dict[str, dict[str, Any]] = body.get("Resources", {})
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in body.get("Parameters", {}).items()
        } | dict(parameter_overrides or {})
        self.region = "us-east-1"
        self.account_id = "123456789012"
        # logical id -> {"Ref": ..., attribute name -> value}, filled as resources are created
        self.physical: dict[str, dict[str, str]] = {}

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH, parameter_overrides: Mapping[str, str] | None = None) -> Template:
        return cls(load_template(path), parameter_overrides)

    # -- what the template declares --------------------------------------------------
    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") == resource_type}

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        specs = {}
        for lid, res in self.of_type("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            env = dict(globals_.get("Environment", {}).get("Variables", {}))
            env.update(props.get("Environment", {}).get("Variables", {}))
            specs[lid] = FunctionSpec(
                logical_id=lid,
                code_dir=ROOT / str(props["CodeUri"]),
                handler=str(props.get("Handler", globals_.get("Handler"))),
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=env,
            )
        return specs

    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for lid, res in self.of_type("AWS::Serverless::Function").items():
            for event in res.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") in ("HttpApi", "Api"):
                    props = event["Properties"]
                    routes.append(HttpRoute(str(props["Method"]).upper(), str(props["Path"]), lid))
        return routes

    def queue_sources(self) -> list[QueueSource]:
        sources = []
        for lid, res in self.of_type("AWS::Serverless::Function").items():
            for event in res.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") == "SQS":
                    props = event["Properties"]
                    queue = props["Queue"]
                    queue_lid = queue["Fn::GetAtt"][0] if isinstance(queue, dict) else queue
                    sources.append(QueueSource(lid, queue_lid, int(props.get("BatchSize", 10))))
        return sources

    def schedule_sources(self) -> list[ScheduleSource]:
        """The functions' `Schedule` events (only `rate(...)` expressions are used here)."""
        sources = []
        for lid, res in self.of_type("AWS::Serverless::Function").items():
            for name, event in res.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") == "Schedule":
                    rate = _RATE.fullmatch(str(event["Properties"]["Schedule"]))
                    if rate is None:
                        raise ValueError(f"{lid}.{name}: only rate(N unit) schedules run locally")
                    seconds = int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")]
                    sources.append(ScheduleSource(lid, name, seconds))
        return sources

    def layer_dirs(self) -> list[Path]:
        return [
            ROOT / str(res["Properties"]["ContentUri"])
            for res in self.of_type("AWS::Serverless::LayerVersion").values()
        ]

    # -- intrinsics ------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(self.resolve(i)) for i in items)
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.body.get("Conditions", {})[name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(expression)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"mailroom-{self.parameters.get('Stage', 'local')}",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise Unresolvable(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.physical[logical_id][attribute]
        except KeyError:
            raise Unresolvable(f"{logical_id}.{attribute}") from None

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)
