"""``python -m tests.support.moto_launch -H 127.0.0.1 -p PORT``: moto's server, with
CloudFormation's ``AWS::NoValue`` semantics in lists.

CloudFormation removes a list element that is ``{"Ref": "AWS::NoValue"}`` (typically the
false branch of an ``Fn::If``): ``Secrets: [..., !If [WithOpenAi, {...}, !Ref
AWS::NoValue]]`` yields a shorter list. moto 5 keeps a ``None`` in its place, which then
breaks IAM inline policies and ECS secrets. This launcher drops exactly those elements
and changes nothing else in moto: a ``None`` from any other source stays as moto made it.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.server import main

_clean_json = parsing.clean_json


def _is_no_value(node: Any, resources_map: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    if node.get("Ref") == "AWS::NoValue":
        return True
    if "Fn::If" in node:
        condition, when_true, when_false = node["Fn::If"]
        chosen = when_true if resources_map.lazy_condition_map[condition] else when_false
        return _is_no_value(chosen, resources_map)
    return False


def clean_json(resource_json: Any, resources_map: Any) -> Any:
    if isinstance(resource_json, list):
        return [
            clean_json(item, resources_map)
            for item in resource_json
            if not _is_no_value(item, resources_map)
        ]
    return _clean_json(resource_json, resources_map)


def install() -> None:
    parsing.clean_json = clean_json  # moto's own recursion goes through this name


if __name__ == "__main__":
    install()
    main()
