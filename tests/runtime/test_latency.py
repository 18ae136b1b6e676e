"""Latency profiles: the shipped default loads, draws are reproducible, bad files name the field."""

from __future__ import annotations

import json
import statistics

import pytest

from toolcast.runtime.latency import Distribution, LatencyProfile


def test_default_profile_is_documented_and_complete():
    p = LatencyProfile.default()
    assert p.source == "builtin:default" and "not measurements" in p.notes
    assert 0.5 <= p.tool_median("get_user_details") <= 1.5  # reads around a second
    assert p.tool_median("book_reservation") > p.tool_median("get_user_details")  # writes slower
    assert p.tool_median("some_unknown_tool") > 0  # a catch-all exists


def test_lognormal_has_the_stated_median_and_p90():
    d = Distribution("lognormal", 1.0, 2.5)
    assert d.quantile(0.5) == pytest.approx(1.0)
    assert d.quantile(0.9) == pytest.approx(2.5, rel=1e-6)
    p = LatencyProfile.from_dict({"tools": [{"match": "*", "dist": "lognormal", "median": 1.0, "p90": 2.5}]})
    draws = [p.tool_seconds("t", i) for i in range(4000)]
    assert statistics.median(draws) == pytest.approx(1.0, rel=0.08)
    assert p.tool_seconds("t", "same key") == p.tool_seconds("t", "same key")


def test_llm_time_is_ttft_plus_tokens():
    p = LatencyProfile.from_dict({"tools": [{"match": "*", "dist": "fixed", "seconds": 1}],
                                  "llm": {"ttft": 0.5, "per_token": 0.01, "default_tokens": 100}})
    assert p.llm.seconds(200) == pytest.approx(2.5)
    assert p.llm.tokens_for(0) == 100 and p.llm.tokens_for(40) == 10


def test_first_matching_rule_wins_case_insensitively():
    p = LatencyProfile.from_dict({"tools": [{"match": "get_*", "dist": "fixed", "seconds": 1},
                                            {"match": "*", "dist": "fixed", "seconds": 9}]})
    assert p.tool_seconds("GET_X") == 1 and p.tool_seconds("put") == 9


@pytest.mark.parametrize("doc, match", [
    ({"tools": []}, "'tools' must be a non-empty list"),
    ({"tools": [{"match": "get_*", "dist": "fixed", "seconds": 1}]}, "catch-all"),
    ({"tools": [{"match": "*", "dist": "gamma"}]}, r"tools\[0\]: field 'dist' must be"),
    ({"tools": [{"match": "*", "dist": "lognormal", "median": 2, "p90": 1}]},
     r"tools\[0\]: need 0 <= median"),
    ({"tools": [{"match": "*", "dist": "fixed"}]}, r"tools\[0\]: field 'seconds' is missing"),
    ({"tools": [{"match": "*", "dist": "fixed", "seconds": 1}], "llm": {"ttft": -1}}, "'llm.ttft'"),
])
def test_bad_profiles_name_the_field(doc, match):
    with pytest.raises(ValueError, match=match):
        LatencyProfile.from_dict(doc, "p.json")


def test_profile_files(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"name": "mine", "tools": [{"match": "*", "dist": "fixed", "seconds": 0.2}]}))
    assert LatencyProfile.load(f).tool_seconds("x") == 0.2
    f.write_text("{")
    with pytest.raises(ValueError, match="p.json: line 1"):
        LatencyProfile.load(f)
