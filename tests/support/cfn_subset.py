"""The part of a CloudFormation template that moto can create, and what was left out.

moto's CloudFormation skips resource types it does not implement, and a ``Ref`` or
``GetAtt`` to a skipped resource then fails the whole stack. :func:`supported_subset`
removes those resources explicitly and stands an ARN-shaped placeholder
(``...:moto-unsupported-<LogicalId>``) in for every reference to them, so that the rest
of the template, unchanged, is what moto creates. The removed resources are returned for
the test to state (and for docs/deploy-ecs.md to list): nothing is dropped silently.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
from collections.abc import Collection
from functools import cache
from typing import Any

from tests.support.moto_server import ACCOUNT, REGION

PLACEHOLDER = "moto-unsupported-"


@cache
def moto_resource_types() -> frozenset[str]:
    """Every resource type moto's CloudFormation can create (its models say so)."""
    import moto
    from moto.core.common_models import CloudFormationModel

    for module in pkgutil.iter_modules(moto.__path__):
        try:
            importlib.import_module(f"moto.{module.name}.models")
        except Exception:  # noqa: S112 - optional extras of moto that are not installed
            continue
    found: set[str] = set()
    pending = list(CloudFormationModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        try:
            kind = model.cloudformation_type()
        except Exception:  # noqa: S112 - abstract bases raise
            continue
        if kind and kind.startswith("AWS::") and kind != "AWS::SERVICE::RESOURCE":
            found.add(kind)
    return frozenset(found)


def placeholder(logical_id: str, kind: str, attribute: str | None = None) -> str:
    service = kind.split("::")[1].lower()
    noun = kind.split("::")[2].lower()
    value = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{noun}/{PLACEHOLDER}{logical_id}"
    return f"{value}.{attribute}" if attribute else value


def supported_subset(
    template: dict[str, Any], also_drop: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """(template moto can create, {logical id: type} of the resources left out).

    ``also_drop`` names resources of a supported type that moto still cannot create as
    written (the caller says why).
    """
    supported = moto_resource_types()
    dropped = {
        name: resource["Type"]
        for name, resource in template["Resources"].items()
        if resource["Type"] not in supported or name in also_drop
    }
    subset = copy.deepcopy(template)
    for name in dropped:
        del subset["Resources"][name]
    for resource in subset["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in dropped:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in dropped]
    return _replace(subset, dropped), dropped


def _replace(node: Any, dropped: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_replace(item, dropped) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in dropped:
        return placeholder(node["Ref"], dropped[node["Ref"]])
    if set(node) == {"Fn::GetAtt"}:
        target, attribute = _getatt(node["Fn::GetAtt"])
        if target in dropped:
            return placeholder(target, dropped[target], attribute)
    if set(node) == {"Fn::Sub"}:
        value = node["Fn::Sub"]
        if isinstance(value, str):
            return {"Fn::Sub": _sub(value, dropped, set())}
        text, variables = value
        return {"Fn::Sub": [_sub(text, dropped, set(variables)), _replace(variables, dropped)]}
    return {key: _replace(value, dropped) for key, value in node.items()}


def _getatt(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        target, attribute = value.split(".", 1)
        return target, attribute
    return value[0], value[1]


def _sub(text: str, dropped: dict[str, str], local: set[str]) -> str:
    def swap(match: re.Match[str]) -> str:
        name, _, attribute = match.group(1).partition(".")
        if name in local or name not in dropped:
            return match.group(0)
        return placeholder(name, dropped[name], attribute or None)

    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", swap, text)
