"""Task-grouped splits: no group on both sides, deterministic, cached."""

from collections import Counter

import pytest

pytest.importorskip("datasets")

from toolcast.data import Message, ToolCall, Trace  # noqa: E402
from toolcast.data.splits import SPLITS, load_splits, split_of, split_traces, traces_of  # noqa: E402


def many_traces(n_groups=60, per_group=3):
    out = []
    for g in range(n_groups):
        for k in range(per_group):
            out.append(
                Trace(
                    trace_id=f"g{g}-{k}",
                    group=f"task:{g}",
                    source="test",
                    events=[Message("user", "hi"), ToolCall(f"c{k}", 0, "f", {"x": k}, "ok")],
                )
            )
    return out


def test_groups_never_cross_and_fractions_roughly_hold():
    dd = split_traces(many_traces(), seed=0)
    groups = {s: set(dd[s]["group"]) for s in SPLITS}
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["test"]
    sizes = Counter({s: len(g) for s, g in groups.items()})
    assert sum(sizes.values()) == 60
    assert 35 <= sizes["train"] <= 58


def test_deterministic_and_seed_dependent():
    a = [split_of(f"task:{i}", 0) for i in range(200)]
    assert a == [split_of(f"task:{i}", 0) for i in range(200)]
    assert a != [split_of(f"task:{i}", 1) for i in range(200)]


def test_duplicate_trace_ids_kept_once_and_round_trip():
    traces = many_traces(5, 2)
    dd = split_traces(traces + traces[:3], seed=0)
    assert sum(len(dd[s]) for s in SPLITS) == 10
    back = {t.trace_id: t for s in SPLITS for t in traces_of(dd[s])}
    assert back["g0-0"] == traces[0]


def test_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        split_of("g", 0, (0.5, 0.5, 0.5))


def test_cache_is_reused_until_the_file_changes(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(t.to_json() for t in many_traces(10, 1)) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    first = load_splits(path, cache_dir=cache)
    assert len(list(cache.iterdir())) == 1
    again = load_splits(path, cache_dir=cache)
    assert again["train"]["trace_id"] == first["train"]["trace_id"]
    path.write_text("\n".join(t.to_json() for t in many_traces(12, 1)) + "\n", encoding="utf-8")
    changed = load_splits(path, cache_dir=cache)
    assert sum(len(changed[s]) for s in SPLITS) == 12


def test_cache_is_not_reused_after_an_importer_change(tmp_path, monkeypatch):
    """Cached splits hold imported traces: a fixed importer must not be hidden behind them."""
    from toolcast.data import splits

    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(t.to_json() for t in many_traces(10, 1)) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    load_splits(path, cache_dir=cache)
    monkeypatch.setattr(splits, "importer_digest", lambda: "another importer")
    load_splits(path, cache_dir=cache)
    assert len(list(cache.iterdir())) == 2


def test_different_traces_that_share_an_id_are_both_kept():
    """Default ids are <file name>:<line>: two folders' run.jsonl give the same ids to different traces."""
    import dataclasses

    traces = many_traces(2, 1)
    clash = dataclasses.replace(traces[1], trace_id=traces[0].trace_id)
    dd = split_traces([traces[0], clash, traces[0]], seed=0)
    ids = sorted(t.trace_id for s in SPLITS for t in traces_of(dd[s]))
    assert ids == [traces[0].trace_id, traces[0].trace_id + "#2"]


def test_a_renamed_trace_never_takes_an_id_another_trace_has():
    """x, x (different) and x#2: the renamed second x was x#2 too, so two traces shared one id."""
    import dataclasses

    a, b, c = many_traces(3, 1)
    x = a.trace_id
    given = [a, dataclasses.replace(b, trace_id=x), dataclasses.replace(c, trace_id=f"{x}#2")]
    for order in (given, given[::-1]):
        dd = split_traces(order, seed=0)
        ids = [t.trace_id for s in SPLITS for t in traces_of(dd[s])]
        assert len(ids) == 3 and len(set(ids)) == 3, ids
