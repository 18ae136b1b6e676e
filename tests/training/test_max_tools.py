"""A tool set larger than the model's `max_tools`: training makes room for it (or says what is cut), and
the embedded predictor warns when a context lists more tools than its model takes."""

from __future__ import annotations

import dataclasses
import logging

from toolcast.data.schema import ToolSpec
from toolcast.predictor.config import Config, TrainConfig, tiny_config
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.training.datamodule import NextCallDataModule, tools_needed
from toolcast.training.example_store import ExampleRows

TINY = tiny_config()  # max_tools 8: two specials and six tools


def many_tools(traces, n_extra: int):
    extra = [ToolSpec(f"lookup_{i}", f"Look up thing {i}.") for i in range(n_extra)]
    return [dataclasses.replace(t, tools=[*extra, *t.tools]) for t in traces]


def write(traces, path):
    path.write_text("".join(t.to_json() + "\n" for t in traces), encoding="utf-8")
    return path


def module(tmp_path, data, grow: bool) -> NextCallDataModule:
    dm = NextCallDataModule([data], Config(model=TINY, train=TrainConfig()), tmp_path / "cache",
                            extract_candidates, grow_tools=grow)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_tools_needed_counts_listed_and_called_tools_and_the_specials(shop_traces):
    traces = shop_traces(3)
    assert tools_needed(traces) == 2 + 3
    assert tools_needed(many_tools(traces, 10)) == 2 + 13
    bare = [dataclasses.replace(t, tools=[]) for t in traces]
    assert tools_needed(bare[:1]) == 2 + 3  # called, never listed
    # Traces that list no tools get their set-up's catalogue: every tool the set-up's traces call.
    events = [e for e in bare[1].events if getattr(e, "tool", "") != "get_user"]
    other = dataclasses.replace(bare[1], events=events)
    assert tools_needed([other]) == 2 + 2 and tools_needed([other, bare[0]]) == 2 + 3


def test_training_grows_max_tools_to_the_largest_tool_set(shop_traces, tmp_path):
    data = write(many_tools(shop_traces(12), 10), tmp_path / "logs.jsonl")
    dm = module(tmp_path, data, grow=True)
    assert dm.config.model.max_tools == 2 + 13
    assert ExampleRows(dm.examples["train"]).arrays()["tool_id"].shape[1] == 15  # every tool a candidate
    # A second data module on the same cache reads the size back instead of recomputing it.
    again = NextCallDataModule([data], Config(model=TINY, train=TrainConfig()), tmp_path / "cache",
                               extract_candidates, grow_tools=True)
    again.setup("fit")
    assert again.config.model.max_tools == 15


def test_a_fixed_max_tools_is_kept_and_the_cut_is_logged(shop_traces, tmp_path, caplog):
    data = write(many_tools(shop_traces(12), 10), tmp_path / "logs.jsonl")
    with caplog.at_level(logging.WARNING, logger="toolcast.training.datamodule"):
        dm = module(tmp_path, data, grow=False)
    assert dm.config.model.max_tools == 8
    assert any("12 traces list more than 6 tools" in r.getMessage() for r in caplog.records)


def test_tool_sets_that_fit_leave_max_tools_alone(shop_traces, tmp_path):
    dm = module(tmp_path, write(shop_traces(12), tmp_path / "logs.jsonl"), grow=True)
    assert dm.config.model.max_tools == 8


def test_a_trace_without_tools_is_sized_for_the_catalogue_it_gets(shop_traces):
    """Its set-up's catalogue holds every tool that set-up's traces list too, not only what bare traces call:
    sized on the bare traces alone, the catalogue it was given was cut."""
    traces = shop_traces(3)
    first = many_tools(traces[:1], 10)[0]  # lists lookup_0..9 + its own tools
    second = dataclasses.replace(traces[1], tools=[ToolSpec(f"find_{i}", f"Find {i}.") for i in range(10)]
                                 + traces[1].tools)
    bare = dataclasses.replace(traces[2], tools=[])
    catalogue = {t.name for t in first.tools} | {t.name for t in second.tools}
    assert tools_needed([first, second, bare]) == 2 + len(catalogue)
