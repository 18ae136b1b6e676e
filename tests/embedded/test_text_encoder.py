"""The pretrained text encoder's runtime side (numpy only): embedding, files, and the semantic expert."""

from __future__ import annotations

import numpy as np
import pytest

from toolcast.data.schema import RESPOND, Context, Message, ToolSpec
from toolcast.predictor.baselines.semantic import SemanticPredictor
from toolcast.predictor.features.text_encoder import StaticTextEncoder, tool_text

PIECES = ["[PAD]", "[UNK]", "copy", "file", "send", "mail", "weather", "##s", "duplicate", "message", "city"]


def encoder() -> StaticTextEncoder:
    """Pieces that mean the same thing share a direction: copy ~ duplicate ~ file, send ~ mail ~ message."""
    rows = {"copy": [1, 0, 0], "duplicate": [1, 0.1, 0], "file": [0.9, 0, 0.1], "send": [0, 1, 0],
            "mail": [0, 0.9, 0.1], "message": [0.1, 1, 0], "weather": [0, 0, 1], "city": [0, 0.1, 1]}
    table = np.array([rows.get(p, [0.01, 0.01, 0.01]) for p in PIECES], np.float16)
    return StaticTextEncoder(PIECES, table, {"source": "test"})


TOOLS = [ToolSpec("copy_file", "Copy a file"), ToolSpec("send_mail", "Send a message"),
         ToolSpec("get_weather", "Weather of a city")]


def test_embedding_is_a_unit_mean_of_word_pieces_and_cached():
    enc = encoder()
    assert enc.ids("Files!") == [3, 7, 1]  # file ##s, "!" unknown
    v = enc.embed("duplicate")
    assert v is not None and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    assert enc.embed("duplicate") is v  # embedded once
    assert enc.embed("") is None
    assert "copy file" in tool_text(TOOLS[0]) and "Copy a file" in tool_text(TOOLS[0])


def test_save_and_load_round_trip_without_pickle(tmp_path):
    enc = encoder()
    enc.save(tmp_path)
    back = StaticTextEncoder.load(tmp_path)
    assert back.pieces == enc.pieces and back.meta == {"source": "test"}
    np.testing.assert_array_equal(back.table, enc.table)
    (tmp_path / "text_encoder.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="text_encoder.json"):
        StaticTextEncoder.load(tmp_path)


def test_the_semantic_expert_ranks_listed_tools_by_the_latest_messages_meaning():
    expert = SemanticPredictor(encoder())
    ctx = Context(events=[Message("user", "please duplicate it")], tools=TOOLS)
    dist = expert.tool_distribution(ctx)
    assert max((p, t) for t, p in dist.items() if t != RESPOND)[1] == "copy_file"
    assert sum(dist.values()) == pytest.approx(1.0)
    # <respond> gets the geometric mean of the tools' p: pooled log-linearly it is neutral
    tools = [p for t, p in dist.items() if t != RESPOND]
    assert dist[RESPOND] == pytest.approx(float(np.exp(np.mean(np.log(tools)))))
    mail = expert.tool_distribution(Context(events=[Message("assistant", "I will mail you")], tools=TOOLS))
    assert max((p, t) for t, p in mail.items() if t != RESPOND)[1] == "send_mail"
    top = expert.predict(ctx, k=2)
    assert top[0].tool == "copy_file" and not top[0].complete and top[0].p_call == 0.0


def test_the_semantic_expert_is_silent_without_tools_or_text():
    expert = SemanticPredictor(encoder())
    assert expert.predict(Context(events=[Message("user", "duplicate it")], tools=[]), k=3) == []
    assert expert.predict(Context(events=[], tools=TOOLS), k=3) == []


ASCII_TEXTS = ["Copy file_a.txt to /tmp/b!", "  tabs\tand\nnew lines\x07 ", "a-b c@d [x] {y}",
               "Send MAIL #W123 (urgent)?", ""]


@pytest.mark.parametrize("text", ASCII_TEXTS)
def test_ascii_fast_path_splits_words_as_bert_does(text):
    from toolcast.predictor.features.text import _normalize, _pre_tokenize
    from toolcast.predictor.features.text_encoder import _ASCII_WORDS

    assert _ASCII_WORDS.findall(text.lower()) == _pre_tokenize(_normalize(text))
