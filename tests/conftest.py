"""Shared test fixtures. Test helpers live here, never inside the package."""

from __future__ import annotations

import pytest

from toolcast.data import Message, ToolCall, ToolSpec, Trace


def build_trace(trace_id: str = "t1") -> Trace:
    """A small trace with a user message, a parallel turn (one call failed) and a text answer."""
    return Trace(
        trace_id=trace_id,
        group="g1",
        source="test",
        metadata={"agent_model": "m", "nested": {"a": [1, 2]}},
        tools=[
            ToolSpec(
                "get_user",
                "Look up a user.",
                {"type": "object", "properties": {"user_id": {}}},
                {"readOnlyHint": True},
            )
        ],
        events=[
            Message("user", "I am user_1", t_end=1.5),
            Message("assistant", "", t_start=1.5, t_end=2.0, tokens=12, turn=0),
            ToolCall("c1", 0, "get_user", {"user_id": "user_1"}, '{"name": "Ann"}', False, 2.0, 2.1),
            ToolCall("c2", 0, "get_user", {"user_id": "user_2"}, "boom", True, 2.0, 2.2, extra={"x": 1}),
            Message("assistant", "Done, ünïcode ✓", turn=None),
        ],
    )


@pytest.fixture
def make_trace():
    """Factory for `build_trace`: `make_trace("id")`."""
    return build_trace


def mutations(record, values=(5, None, [], {}, "x", "{bad", True)):
    """Copies of a JSON record with one value replaced by each of `values`, at every position in it.

    For "bad input is a clear error, never a crash" tests of the importers.
    """
    import copy

    def positions(node, prefix=()):
        yield prefix
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            yield from positions(child, (*prefix, key))

    for path in list(positions(record)):
        for value in values:
            if not path:
                yield value
                continue
            copied = copy.deepcopy(record)
            node = copied
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            yield copied


@pytest.fixture
def mutate():
    """`mutate(record)`: see `mutations`."""
    return mutations


def build_shop_traces(n: int = 12, offset: int = 0) -> list[Trace]:
    """`n` small customer-service traces, one task group each, with a regular call pattern the learned
    model can pick up: get_user(id from the user's text) -> get_order(id from the output) -> text ->
    cancel_order(same id, an enum reason) -> text. For the predictor and training tests."""
    import json

    tools = [
        ToolSpec("get_user", "Look up a user by id.", {"type": "object", "properties": {
            "user_id": {"type": "string"}}, "required": ["user_id"]}),
        ToolSpec("get_order", "Details of an order.", {"type": "object", "properties": {
            "order_id": {"type": "string"}}, "required": ["order_id"]}),
        ToolSpec("cancelOrder", "Cancel a pending order.", {"type": "object", "properties": {
            "order_id": {"type": "string"},
            "reason": {"type": "string", "enum": ["no longer needed", "ordered by mistake"]}},
            "required": ["order_id", "reason"]}),
    ]
    traces = []
    for k in range(offset, offset + n):
        user, orders = f"user_{k}", [f"#W{k}01", f"#W{k}02"]
        pick = orders[k % 2]
        t0 = 1000.0 * k
        events = [
            Message("system", "You are a shop assistant."),
            Message("user", f"Hi, I am {user}. Please cancel my order {pick}.", t_end=t0 + 1),
            Message("assistant", "", t_start=t0 + 1, t_end=t0 + 2, turn=1),
            ToolCall(f"c{k}a", 1, "get_user", {"user_id": user},
                     json.dumps({"user_id": user, "orders": orders}),
                     t_start=t0 + 2, t_end=t0 + 2.1),
            Message("assistant", "", t_start=t0 + 2.1, t_end=t0 + 3, turn=2),
            ToolCall(f"c{k}b", 2, "get_order", {"order_id": pick},
                     json.dumps({"order_id": pick, "status": "pending"}),
                     t_start=t0 + 3, t_end=t0 + 3.2),
            Message("assistant", "Shall I cancel it?", t_start=t0 + 3.2, t_end=t0 + 4),
            Message("user", "yes", t_end=t0 + 5),
            Message("assistant", "", t_start=t0 + 5, t_end=t0 + 6, turn=3),
            ToolCall(f"c{k}c", 3, "cancelOrder", {"order_id": pick, "reason": "no longer needed"},
                     json.dumps({"status": "cancelled"}), t_start=t0 + 6, t_end=t0 + 6.5),
            Message("assistant", "Done.", t_start=t0 + 6.5, t_end=t0 + 7),
        ]
        traces.append(Trace(f"shop{k}", f"shop:{k}", "test", {"agent_model": "m"}, list(tools), events))
    return traces


def tiny_text_encoder():
    """A 3-dimension static text encoder over a few word pieces (the real one is distilled from
    all-MiniLM-L6-v2 once per machine: a minute of CPU no test should spend)."""
    import numpy as np

    from toolcast.predictor.features.text_encoder import StaticTextEncoder

    pieces = ["[PAD]", "[UNK]", "list", "get", "order", "item", "##s", "refund", "status", "search", "user"]
    rng = np.random.default_rng(0)
    return StaticTextEncoder(pieces, rng.normal(size=(len(pieces), 3)).astype(np.float16), {"source": "test"})


@pytest.fixture(autouse=True)
def _no_encoder_distillation(monkeypatch):
    """Training fits its pool with the tiny encoder above, never by distilling the real one."""
    try:
        import toolcast.training.pool_fit as pool_fit
    except ImportError:  # the base install (no training extra)
        return
    monkeypatch.setattr(pool_fit, "_text_encoder", lambda cache_dir=None: tiny_text_encoder())


@pytest.fixture(scope="session")
def shop_traces():
    """Factory for `build_shop_traces`: `shop_traces(n)` (a pure function: session scope lets module
    fixtures train on it once)."""
    return build_shop_traces


@pytest.fixture
def import_round_trip(tmp_path, capsys):
    """`import_round_trip(path, fmt, n, files=1)`: `toolcast import path --out x.jsonl` succeeds, says it
    read `n` traces of format `fmt` from `files` files, and its output reads back as the same traces in
    toolcast's own format. Every importer's end-to-end check."""

    def check(path, fmt: str, n: int, files: int = 1) -> list[Trace]:
        from toolcast.cli.main import main
        from toolcast.data import ImportReport, load_traces

        out = tmp_path / "x.jsonl"
        assert main(["import", str(path), "--out", str(out)]) == 0
        assert f"{n} traces from {files} files ({fmt}: {n})" in capsys.readouterr().out
        report = ImportReport()
        again = load_traces(out, report=report)
        assert report.formats == {"toolcast": n}
        assert [t.to_dict() for t in again] == [t.to_dict() for t in load_traces(path)]
        return again

    return check
