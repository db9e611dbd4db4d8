"""The rounds' order and the summary's arithmetic, without servers."""

from __future__ import annotations

import math
from typing import Any

from bench import hub_rounds


def test_each_round_moves_every_target_one_position_later() -> None:
    names = ["a", "b", "c"]
    orders = [hub_rounds.rotated(names, r) for r in range(4)]
    assert orders == [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"], ["a", "b", "c"]]
    for r, order in enumerate(orders):  # target i at position (i + r) mod n
        assert all(order[(i + r) % 3] == name for i, name in enumerate(names))


def _row(target: str, round_: int, p99: float) -> dict[str, Any]:
    return {
        "target": target,
        "round": round_,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "cpu_us_per_delivery": 30.0,
        "expected": 10,
        "delivered": 10,
    }


def test_targets_are_judged_on_the_medians_and_counted_round_by_round() -> None:
    p99 = {
        "hub-memory": [2.0, 30.0, 3.0],
        "hub-redis": [3.0, 4.0, 5.0],
        "python-socketio": [4.0, 3.5, 70.0],
    }
    rows = [_row(name, r + 1, v) for name, values in p99.items() for r, v in enumerate(values)]
    result = hub_rounds.summary(rows)
    assert result["rounds"] == 3
    redis = result["targets"]["hub-redis"]
    assert (redis["p99_ms_median"], redis["p99_ms_min"], redis["p99_ms_max"]) == (4.0, 3.0, 5.0)
    by_base = {ratio["base"]: ratio for ratio in result["ratios"]}
    memory = by_base["hub-memory"]  # medians 4.0 / 3.0; rounds 1.5, 0.13, 1.67
    assert math.isclose(memory["of_medians"], 4 / 3)
    assert memory["met"]
    assert (memory["rounds_met"], memory["rounds_compared"]) == (2, 3)
    assert math.isclose(memory["median_of_rounds"], 1.5)
    socketio = by_base["python-socketio"]  # medians 4.0 / 4.0; rounds 0.75, 1.14, 0.07
    assert socketio["of_medians"] == 1.0
    assert socketio["met"]
    assert socketio["rounds_met"] == 2


def test_a_target_missed_on_the_medians_is_not_met() -> None:
    rows = [_row("hub-memory", r, 2.0) for r in (1, 2)]
    rows += [_row("hub-redis", r, 4.0) for r in (1, 2)]
    (ratio,) = hub_rounds.summary(rows)["ratios"]
    assert ratio["of_medians"] == 2.0
    assert not ratio["met"]
    assert ratio["rounds_met"] == 0
