"""The learned model: featurizer shapes, tiny-config forward, learning on a tiny batch, save -> load, text."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from toolcast.predictor.config import Config, ModelConfig, TrainConfig, tiny_config
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import Featurizer
from toolcast.predictor.features.text import TextEncoder, split_identifier, train_tokenizer
from toolcast.predictor.modeldir import Calibration, ModelDirError, ModelParts, read_parts
from toolcast.predictor.torch.model import INPUT_NAMES, OUTPUT_NAMES, NextCallModel
from toolcast.predictor.torch.predictor import LearnedPredictor, load_pretrained, save_pretrained
from toolcast.training.examples import build_examples, build_vocabularies, corpus_texts
from toolcast.training.module import slot_loss, tool_loss

TINY = tiny_config()


@pytest.fixture
def tiny(shop_traces):
    traces = shop_traces(6)
    tok = train_tokenizer(corpus_texts(traces), vocab_size=300, min_frequency=1)
    encoder = TextEncoder.from_json(tok)
    vocab = build_vocabularies(traces, extract_candidates)
    cfg = replace(
        TINY, text_vocab_size=encoder.vocab_size, n_tool_ids=vocab.n_tool_ids, n_agents=vocab.n_agents
    )
    featurizer = Featurizer(cfg, encoder, vocab, extract_candidates)
    return traces, tok, encoder, vocab, cfg, featurizer


def batch_of(examples) -> dict[str, torch.Tensor]:
    return {
        k: torch.from_numpy(v.astype(np.int64) if v.dtype == np.int32 else v)
        for k, v in examples.arrays.items()
    }


def test_config_round_trip_and_validation():
    c = Config(model=TINY, train=TrainConfig(lr=1e-3))
    assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="heads"):
        ModelConfig(hidden=10, heads=3)
    with pytest.raises(ValueError, match="unknown field"):
        ModelConfig.from_dict({"hiden": 8})
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="max")


@pytest.mark.parametrize(
    "name,words",
    [
        ("getOrderDetails", "get order details"),
        ("get_order_details", "get order details"),
        ("GorillaFileSystem.cd", "gorilla file system cd"),
    ],
)
def test_split_identifier(name, words):
    assert split_identifier(name) == words


def test_pure_python_encoder_matches_tokenizers(shop_traces):
    from tokenizers import Tokenizer

    texts = [*corpus_texts(shop_traces(4)), "Ünïcode café, naïve résumé!", "中文 mixed text", "a\tb\nc  d"]
    tok = train_tokenizer(texts, vocab_size=200, min_frequency=1)
    reference = Tokenizer.from_str(tok)
    encoder = TextEncoder.from_json(tok)
    for t in texts:
        assert encoder.encode(t) == reference.encode(t).ids


def test_featurizer_shapes_and_targets(tiny):
    traces, _tok, _enc, _vocab, cfg, featurizer = tiny
    ex = build_examples(traces, featurizer)
    n = len(ex)
    a = ex.arrays
    assert a["ev_type"].shape == (n, cfg.max_events + 1)
    assert a["ev_text"].shape == (n, cfg.max_events + 1, cfg.max_text_tokens)
    assert a["tool_name"].shape == (n, cfg.max_tools, cfg.max_name_tokens)
    assert a["cand_num"].shape[:3] == (n, cfg.max_slots, cfg.max_candidates)
    assert (a["ev_type"][:, 0] == 1).all()  # the summary position
    # Each trace: get_user, get_order, respond, cancelOrder, respond.
    assert n == 5 * len(traces)
    tools = []
    for i, (context, _label) in enumerate(traces[0].decision_points()):
        tools.append(featurizer.featurize(context).tools.names[int(a["tool_target"][i])])
    assert tools == ["get_user", "get_order", "<respond>", "cancelOrder", "<respond>"]
    # The order id of get_order is copied from the output: its target is a candidate, not <free>.
    assert a["slot_target"][1, 0] >= 2
    # cancelOrder's reason comes from the schema's enum.
    assert a["slot_target"][3, 1] >= 2


def test_forward_shapes_tiny_config(tiny):
    traces, _tok, _enc, _vocab, cfg, featurizer = tiny
    batch = batch_of(build_examples(traces[:2], featurizer))
    model = NextCallModel(cfg).eval()
    with torch.no_grad():
        tool_logits, slot_logits = model(*(batch[k] for k in INPUT_NAMES))
    b = batch["ev_type"].shape[0]
    assert tool_logits.shape == (b, cfg.max_tools)
    assert slot_logits.shape == (b, cfg.max_slots, cfg.max_candidates + 2)
    assert len(OUTPUT_NAMES) == 2
    # Padded tool positions get no mass.
    p = torch.softmax(tool_logits, -1)
    assert float(p.masked_select(~batch["tool_mask"]).max()) < 1e-6


def test_loss_decreases_on_a_tiny_batch(tiny):
    traces, _tok, _enc, _vocab, cfg, featurizer = tiny
    batch = batch_of(build_examples(traces, featurizer))
    torch.manual_seed(0)
    model = NextCallModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        tl, sl = model(*(batch[k] for k in INPUT_NAMES))
        return tool_loss(tl, batch["tool_multi"]) + slot_loss(sl, batch["slot_target"])

    first = loss().item()
    for _ in range(40):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * first


def test_save_load_identical_outputs(tiny, tmp_path):
    traces, tok, _enc, vocab, cfg, featurizer = tiny
    torch.manual_seed(1)
    model = NextCallModel(cfg).eval()
    parts = ModelParts(tmp_path, Config(model=cfg), tok, vocab, Calibration(1.3, 0.9), {"note": "test"})
    save_pretrained(model, parts, tmp_path / "m")
    loaded, loaded_parts = load_pretrained(tmp_path / "m")
    assert loaded_parts.calibration == Calibration(1.3, 0.9) and loaded_parts.metrics == {"note": "test"}
    batch = batch_of(build_examples(traces[:2], featurizer))
    with torch.no_grad():
        for a, b in zip(
            model(*(batch[k] for k in INPUT_NAMES)), loaded(*(batch[k] for k in INPUT_NAMES)), strict=True
        ):
            assert torch.equal(a, b)
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))
    # The predictor gives ranked calls with probabilities.
    predictor = LearnedPredictor.load(tmp_path / "m")
    context, _label = next(iter(traces[0].decision_points()))
    preds = predictor.predict(context, k=5)
    assert 1 <= len(preds) <= 5
    assert all(0.0 <= p.p_call <= p.p_tool <= 1.0 for p in preds)
    assert preds == sorted(preds, key=lambda p: (-p.p_call, -p.p_tool))


def test_model_dir_errors_say_what_is_wrong(tiny, tmp_path):
    _traces, tok, _enc, vocab, cfg, _f = tiny
    model = NextCallModel(cfg)
    d = save_pretrained(
        model, ModelParts(tmp_path, Config(model=cfg), tok, vocab, Calibration()), tmp_path / "m"
    )
    with pytest.raises(ModelDirError, match="does not exist"):
        read_parts(tmp_path / "nope")
    (d / "calibration.json").write_text('{"tool_temperature": 1.0', encoding="utf-8")
    with pytest.raises(ModelDirError, match="calibration.json is not valid JSON"):
        read_parts(d)
    (d / "calibration.json").write_text('{"tool_temperature": -1}', encoding="utf-8")
    with pytest.raises(ModelDirError, match="positive"):
        read_parts(d)
    (d / "calibration.json").write_text("{}", encoding="utf-8")
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100])
    with pytest.raises(ModelDirError, match="model.safetensors"):
        load_pretrained(d)
    (d / "config.json").write_text(json.dumps(Config(model=replace(cfg, text_vocab_size=7)).to_dict()))
    with pytest.raises(ModelDirError, match="different models"):
        read_parts(d)
    (d / "vocab.json").unlink()
    with pytest.raises(ModelDirError, match="vocab.json is missing|different models"):
        read_parts(d)
