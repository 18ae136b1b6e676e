"""The tool catalogue: what an agent set-up's training logs list or call, for contexts that list no tools."""

from __future__ import annotations

import dataclasses

from toolcast.data.schema import Context, Message, ToolCall, ToolSpec, Trace
from toolcast.predictor.features.catalog import ToolFiller, build_catalog, toolset_key


def trace(tid, source, tools, calls, domain=None):
    events = [Message("user", "go")]
    for i, (tool, args) in enumerate(calls):
        events.append(ToolCall(f"{tid}{i}", i, tool, args, "ok"))
    return Trace(tid, tid, source, {"domain": domain} if domain else {}, tools, events)


LISTED = ToolSpec("get_user", "Look up a user.",
                  {"type": "object", "properties": {"user_id": {"type": "string"}}})


def test_listed_schemas_are_kept_and_unlisted_tools_get_one_from_their_calls():
    traces = [
        trace("a", "chat", [LISTED], [("get_user", {"user_id": "u1"})]),
        trace("b", "chat", [], [("search", {"q": "shoes", "limit": 5}),
                                ("search", {"q": "hats", "exact": True}), ("get_user", {"user_id": "u2"})]),
    ]
    cat = build_catalog(traces)
    assert set(cat) == {"chat:", ""}
    by_name = {d["name"]: d for d in cat["chat:"]}
    assert by_name["get_user"] == LISTED.to_dict()
    assert by_name["search"]["parameters"] == {
        "type": "object",
        "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}, "exact": {"type": "boolean"}},
        "required": ["q"],
    }
    assert [d["name"] for d in cat["chat:"]] == ["get_user", "search"]  # most called first, then by name


def test_set_ups_are_kept_apart_and_the_empty_key_holds_them_all():
    traces = [trace("a", "tau2", [], [("book", {"id": 1})], domain="airline"),
              trace("b", "tau2", [], [("refund", {"id": 2})], domain="retail")]
    cat = build_catalog(traces)
    assert [d["name"] for d in cat["tau2:airline"]] == ["book"]
    assert [d["name"] for d in cat["tau2:retail"]] == ["refund"]
    assert sorted(d["name"] for d in cat[""]) == ["book", "refund"]


def test_filler_leaves_listed_tools_alone_and_fills_by_set_up():
    cat = build_catalog([trace("a", "tau2", [], [("book", {"id": 1})], domain="airline"),
                         trace("b", "tau2", [], [("refund", {"id": 2})], domain="retail")])
    fill = ToolFiller(cat)
    listed = Context([Message("user", "hi")], [LISTED], {"source": "tau2", "domain": "retail"})
    assert fill(listed) is listed
    bare = Context([Message("user", "hi")], [], {"source": "tau2", "domain": "retail"})
    filled = fill(bare)
    assert [t.name for t in filled.tools] == ["refund"] and filled.events is bare.events
    assert fill(bare).tools[0] is filled.tools[0]  # the same spec objects at every step
    unknown = fill(dataclasses.replace(bare, metadata={"source": "elsewhere"}))
    assert sorted(t.name for t in unknown.tools) == ["book", "refund"]
    assert ToolFiller({})(bare) is bare
    assert toolset_key({"source": "tau2", "category": "x"}) == "tau2:x"


def test_a_featurized_context_with_no_tools_gets_its_set_ups_tools_as_candidates(shop_traces):
    from toolcast.predictor.config import tiny_config
    from toolcast.predictor.features.featurizer import Featurizer
    from toolcast.predictor.features.text import TextEncoder, train_tokenizer
    from toolcast.training.examples import build_vocabularies, corpus_texts

    traces = [dataclasses.replace(t, tools=[]) for t in shop_traces(4)]
    vocab = build_vocabularies(traces, None)
    encoder = TextEncoder.from_json(train_tokenizer(corpus_texts(traces), vocab_size=300))
    fz = Featurizer(tiny_config(), encoder, vocab)
    context, _label = next(iter(traces[0].decision_points()))  # before any call
    names = fz.featurize(context).tools.names
    assert {"get_user", "get_order", "cancelOrder"} <= set(names)


def test_a_malformed_catalogue_in_vocab_json_is_a_model_dir_error(tmp_path):
    """It was read only at the first context without tools: a TypeError or SchemaError mid-prediction."""
    import json
    import shutil
    from pathlib import Path

    import pytest

    from toolcast.predictor.modeldir import ModelDirError, read_parts

    fixture = Path(__file__).parents[1] / "fixtures" / "model_tiny"
    for bad in ({"": 5}, {"": [5]}, {"": [{"name": 3}]}, {"": [{"description": "no name"}]}):
        model = tmp_path / "m"
        shutil.rmtree(model, ignore_errors=True)
        shutil.copytree(fixture, model)
        vocab = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
        vocab["catalog"] = bad
        (model / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        with pytest.raises(ModelDirError, match="vocab.json.*catalog"):
            read_parts(model)


def test_unknown_set_ups_share_one_fallback_not_one_copy_each():
    """A server's requests name any source/domain: each unknown one kept its own copy of every tool."""
    cat = build_catalog([trace("a", "tau2", [], [("book", {"id": 1})], domain="airline")])
    fill = ToolFiller(cat)
    contexts = [Context([Message("user", "hi")], [], {"source": f"client-{i}"}) for i in range(50)]
    first = fill(contexts[0]).tools
    assert all(fill(c).tools is first for c in contexts)
    assert len(fill._specs) == 1


def test_a_tool_name_two_set_ups_share_gets_each_set_ups_own_schema():
    """Specs were kept by name alone: the set-up listed second was given the first one's `search`."""
    web = ToolSpec("search", "Search the web.",
                   {"type": "object", "properties": {"query": {"type": "string"}}})
    shop = ToolSpec("search", "Search the catalogue.",
                    {"type": "object", "properties": {"sku": {"type": "string"}}})
    cat = build_catalog([trace("a", "web", [web], [("search", {"query": "x"})]),
                         trace("b", "shop", [shop], [("search", {"sku": "y"})]),
                         trace("c", "calls", [], [("lookup", {"id": 1})]),
                         trace("d", "other", [], [("lookup", {"name": "z"})])])
    assert cat["web:"] == [web.to_dict()] and cat["shop:"] == [shop.to_dict()]
    assert cat["calls:"][0]["parameters"]["properties"] == {"id": {"type": "integer"}}
    assert cat["other:"][0]["parameters"]["properties"] == {"name": {"type": "string"}}
