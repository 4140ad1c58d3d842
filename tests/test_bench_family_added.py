"""The arms of the family-added study (benchmarks/portfolio/family_added.py)."""

from __future__ import annotations

from benchmarks.portfolio.family_added import arms


def _info(spec: dict[str, int]) -> dict[str, tuple[str, int, float]]:
    return {f"{family}-{rank}": (family, rank, 1.0) for family, n in spec.items() for rank in range(n)}


def test_the_control_adds_as_many_further_auto_configurations_round_robin():
    info = _info({"xgboost": 4, "knn": 3, "catboost": 3})
    groups = arms(info, "catboost", ranks=2)
    assert sorted(groups["base"]) == ["knn-0", "knn-1", "xgboost-0", "xgboost-1"]
    assert groups["plus_catboost"] == groups["base"] + ["catboost-0", "catboost-1"]
    # two added, one from each auto family in turn, lowest ranks first
    assert sorted(groups["more_of_same"][4:]) == ["knn-2", "xgboost-2"]


def test_the_control_takes_what_there_is_when_the_auto_families_run_out():
    info = _info({"xgboost": 3, "catboost": 5})
    groups = arms(info, "catboost", ranks=2)
    assert groups["more_of_same"][2:] == ["xgboost-2"]
    assert len(groups["plus_catboost"]) == 4


def test_the_new_family_can_bring_fewer_configurations_than_the_base():
    info = _info({"xgboost": 4, "knn": 4, "catboost": 3})
    groups = arms(info, "catboost", ranks=3, added_ranks=1)
    assert len(groups["base"]) == 6
    assert groups["plus_catboost"][6:] == ["catboost-0"]
    assert len(groups["more_of_same"]) == 7
