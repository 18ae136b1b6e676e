"""The fitted baselines saved to one JSON file and loaded back without the logs: the same predictions."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from toolcast.data import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import canonical_args
from toolcast.predictor.baselines import MarkovPredictor, PatternPoolPredictor, decision_contexts
from toolcast.predictor.baselines.calls import SignatureModel
from toolcast.predictor.baselines.io import FORMAT_VERSION
from toolcast.predictor.baselines.ngram import START, InterpolatedNGram


@pytest.fixture(scope="module")
def split():
    """A small slice of the sample, split by task group: the fit takes a second or two."""
    traces = load_traces(*sample_files("tau2")[:2]) + load_traces(*sample_files("bfcl"))[:40]
    groups = sorted({t.group for t in traces})
    held = set(groups[::6])
    train = [t for t in traces if t.group not in held][:150]
    test = [t for t in traces if t.group in held][:8]
    assert train and test
    return train, test


@pytest.fixture(scope="module", params=["pattern", "markov"])
def fitted(request, split):
    cls = PatternPoolPredictor if request.param == "pattern" else MarkovPredictor
    return cls().fit(split[0])


def as_json(preds) -> str:
    """Type-exact: 1 and 1.0, a tuple and a list, would compare equal with ==."""
    return json.dumps([[p.tool, canonical_args(p.args), p.free, p.p_tool, p.p_call, p.sources]
                       for p in preds])


@pytest.mark.parametrize("name", ["", "model.json", "model.json.gz"])
def test_loaded_baseline_predicts_exactly_as_fitted(fitted, split, tmp_path, name):
    path = fitted.save(tmp_path / name if name else tmp_path)
    assert path.name == (name or f"{'pattern_pool' if fitted.name == 'pattern' else 'markov'}.json.gz")
    loaded = type(fitted).load(tmp_path / name if name else tmp_path)
    n = 0
    for trace in split[1]:
        for ctx, _ in decision_contexts(trace):
            want, got = fitted.predict(ctx, k=8), loaded.predict(ctx, k=8)
            assert got == want and as_json(got) == as_json(want)
            if isinstance(fitted, PatternPoolPredictor):
                assert loaded.tool_distribution(ctx) == fitted.tool_distribution(ctx)
            n += 1
    assert n > 20
    # Saving what was loaded gives the same file.
    again = loaded.save(tmp_path / "again" / path.name)
    assert again.read_bytes() == path.read_bytes()


def roundtrip(piece):
    return type(piece).from_dict(json.loads(json.dumps(piece.to_dict())), "test")


def test_pieces_round_trip_with_tuple_keys_and_tie_order():
    ngram = InterpolatedNGram(3, beta=2.0)
    ngram.add(((), (START,), (START, "user")), "get_user")
    ngram.add(((), ("get_user",), ("get_user", "tool")), "<respond>")
    loaded = roundtrip(ngram)
    assert loaded.counts == ngram.counts and loaded.beta == 2.0
    assert {ctx for level in loaded.counts for ctx in level} == {(), (START,), (START, "user"), ("get_user",),
                                                                 ("get_user", "tool")}
    chain = ((), ("get_user",), ("get_user", "user"))
    assert loaded.distribution(chain, ["get_user", "x", "<respond>"]) == ngram.distribution(
        chain, ["get_user", "x", "<respond>"])
    signatures = SignatureModel()
    for args in ({"b": 1}, {"a": 1}, {"a": 2, "c": 3}):  # a tie: the first seen wins `top`
        signatures.add("t", args)
    assert roundtrip(signatures).top("t", None, n=1) == signatures.top("t", None, n=1) == [(("b",), 1 / 3)]


def test_pattern_pool_keeps_its_value_sources_and_constants(fitted, split, tmp_path):
    if not isinstance(fitted, PatternPoolPredictor):
        pytest.skip("pattern pool only")
    loaded = PatternPoolPredictor.load(fitted.save(tmp_path))
    assert loaded.value_maps is not None and fitted.value_maps is not None
    assert loaded.value_maps.slots.keys() == fitted.value_maps.slots.keys()
    assert loaded.value_maps.pooled == fitted.value_maps.pooled
    for ts, slot_map in fitted.value_maps.slots.items():
        assert loaded.value_maps.slots[ts] == slot_map  # tuple source keys and all
        assert all(isinstance(k, tuple) for k in loaded.value_maps.slots[ts].sources)
        assert loaded.value_maps.constants.values(*ts) == fitted.value_maps.constants.values(*ts)
    # The constants are there, but not the values of one task alone, nor the groups' names.
    assert any(loaded.value_maps.constants.values(*ts) for ts in fitted.value_maps.slots)
    text = gzip.decompress((tmp_path / "pattern_pool.json.gz").read_bytes()).decode()
    assert not any(json.dumps(t.group) in text for t in split[0])
    with pytest.raises(ValueError, match="cannot leave a group out"):
        loaded.value_maps.constants.values(*next(iter(fitted.value_maps.slots)), leave_out="g")


def test_saved_file_is_json_not_pickle(fitted, tmp_path):
    for name in ("plain.json", "packed.json.gz"):
        raw = fitted.save(tmp_path / name).read_bytes()
        data = gzip.decompress(raw) if name.endswith(".gz") else raw
        assert data[:1] == b"{" and raw[:1] != b"\x80"  # \x80: a pickle's first byte
        d = json.loads(data)
        assert d["version"] == FORMAT_VERSION and d["format"].startswith("toolcast.")


def _rewrite(path, edit):
    d = json.loads(gzip.decompress(path.read_bytes()))
    edit(d)
    path.write_bytes(gzip.compress(json.dumps(d).encode()))


def _first_counts(d):
    d["ngram"]["counts"][1][0][1] = {"some_tool": "many"}


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.update(version=FORMAT_VERSION + 1), "version"),
    (lambda d: d.update(format="toolcast.other"), "format"),
    (lambda d: d.pop("toolsets"), "toolsets"),
    (lambda d: d["ngram"].update(beta="one"), "ngram.beta"),
    (_first_counts, "ngram.counts[1][0][1].some_tool"),
    (lambda d: d["ngram"]["counts"].pop(), "ngram.counts"),
    (lambda d: d["toolsets"].update(vocabulary=[1, 2]), "toolsets.vocabulary[0]"),
])
def test_malformed_file_is_a_value_error_naming_file_and_field(fitted, tmp_path, edit, field):
    path = fitted.save(tmp_path)
    _rewrite(path, edit)
    with pytest.raises(ValueError) as e:
        type(fitted).load(tmp_path)
    assert str(path) in str(e.value) and field in str(e.value)


def test_pattern_pool_rejects_bad_value_maps(fitted, tmp_path):
    if not isinstance(fitted, PatternPoolPredictor):
        pytest.skip("pattern pool only")
    path = fitted.save(tmp_path)

    def bad_stats(d):
        d["value_maps"]["slots"][0][2]["sources"][0][1][1] = [1, 2]

    _rewrite(path, bad_stats)
    with pytest.raises(ValueError, match=r"field value_maps\.slots\[0\]\[2\]\.sources\[0\]\[1\]\[1\]: "
                                         r"expected a list of 4 items"):
        PatternPoolPredictor.load(path)


@pytest.mark.parametrize("content", [b"", b"not json", b"\x1f\x8b\x08\x00trunc", b"[1, 2]",
                                     gzip.compress(b"{\"format\": ")])
def test_unreadable_file_is_a_value_error_naming_it(tmp_path, content):
    path = tmp_path / "pattern_pool.json.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        PatternPoolPredictor.load(tmp_path)
    with pytest.raises(ValueError, match="no-such-dir"):
        MarkovPredictor.load(tmp_path / "no-such-dir")


def test_failed_save_leaves_the_old_file_and_no_partial_one(fitted, tmp_path, monkeypatch):
    path = fitted.save(tmp_path)
    before = path.read_bytes()

    def fail(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(tmp_path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_unfitted_pattern_pool_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="fit it before saving"):
        PatternPoolPredictor().save(tmp_path)
    assert not list(tmp_path.iterdir())
