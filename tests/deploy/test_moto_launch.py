"""tests.support.moto_launch gives moto CloudFormation's AWS::NoValue-in-list semantics,
and nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from moto.cloudformation import parsing

from tests.support.moto_launch import clean_json


class _Resources(dict[str, Any]):
    """The slice of moto's ResourceMap that clean_json reads."""

    def __init__(self, conditions: dict[str, bool]) -> None:
        super().__init__({"AWS::NoValue": None, "Nothing": None, "Region": "us-east-1"})
        self.lazy_condition_map = conditions


OPENAI = {"Name": "OPENAI_API_KEY", "ValueFrom": "arn:openai"}
SECRETS = [
    {"Name": "REDIS_URL", "ValueFrom": "arn:redis"},
    {"Fn::If": ["WithOpenAi", OPENAI, {"Ref": "AWS::NoValue"}]},
]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the launched server: moto's recursion goes through the corrected function."""
    monkeypatch.setattr(parsing, "clean_json", clean_json)


def test_released_moto_leaves_a_none_in_the_list() -> None:
    cleaned = parsing.clean_json(SECRETS, _Resources({"WithOpenAi": False}))
    assert cleaned == [{"Name": "REDIS_URL", "ValueFrom": "arn:redis"}, None]


@pytest.mark.usefixtures("launched")
def test_a_false_branch_of_no_value_drops_the_element() -> None:
    cleaned = clean_json(SECRETS, _Resources({"WithOpenAi": False}))
    assert cleaned == [{"Name": "REDIS_URL", "ValueFrom": "arn:redis"}]


@pytest.mark.usefixtures("launched")
def test_a_true_branch_keeps_the_element() -> None:
    cleaned = clean_json(SECRETS, _Resources({"WithOpenAi": True}))
    assert [s["Name"] for s in cleaned] == ["REDIS_URL", "OPENAI_API_KEY"]


@pytest.mark.usefixtures("launched")
def test_nested_lists_and_other_values_are_untouched() -> None:
    template = {"Policies": [{"Ref": "AWS::NoValue"}, {"Statement": [{"Ref": "Region"}]}]}
    assert clean_json(template, _Resources({})) == {"Policies": [{"Statement": ["us-east-1"]}]}
    # A None that does not come from AWS::NoValue stays as moto made it.
    assert clean_json([{"Ref": "Nothing"}], _Resources({})) == [None]
