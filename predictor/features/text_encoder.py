"""A frozen pretrained sentence encoder, as a static token table: numpy only, saved in the model directory.

The learned model's own text tokens are trained from scratch on the logs, so they cannot know that
"duplicate it" means `cp` on a tool set they never saw. A pretrained sentence encoder does. Running one
(all-MiniLM-L6-v2, 6 transformer layers) per message and per tool would cost milliseconds per text in the
agent's process, so toolcast keeps a *static* version of it, as model2vec does (Tulkens & van Dongen,
"Model2Vec: fast state-of-the-art static embeddings", 2024): each word piece of the encoder's vocabulary
is run through the encoder once at training time (`toolcast.training.text_encoder_distill`), and a
text's embedding is the mean of its pieces' rows, normalised. That is a dictionary lookup and a mean:
microseconds.

What uses it: the semantic expert (`baselines/semantic.py`), which scores each listed tool by the cosine
of its text (name words, description, parameter names) with the latest user message and the agent's
latest text, and is pooled with the model and the pattern pool (`pooling.py`): cosines mean the same
thing on a tool set never seen in training, which is where the pretrained encoder helps.

Files (JSON and `.npy` read with `allow_pickle=False`; never pickle): `text_encoder.json` (the word-piece
vocabulary, where the weights came from) and `text_encoder.npy` (the table, float16). Texts are embedded
once: tool texts once per tool, messages once per text (bounded caches).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolcast.data.schema import Context, Message, ToolSpec
from toolcast.predictor.features.text import _normalize, _pre_tokenize, split_identifier

TABLE_FILE = "text_encoder.npy"
META_FILE = "text_encoder.json"
MAX_PIECES = 128
"""Word pieces of a text kept (the encoder's own training truncated at 128 too)."""
MAX_CHARS = 600
"""Characters of a text read: 128 word pieces rarely need more."""
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
"""BERT's pre-tokenizer on lower-cased ASCII: runs of letters and digits; each punctuation mark alone."""
class _Lru(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class StaticTextEncoder:
    """Text -> unit vector: mean of the word pieces' rows of a distilled table (see the module doc)."""

    def __init__(self, pieces: Sequence[str], table: np.ndarray, meta: dict[str, Any] | None = None):
        if table.ndim != 2 or table.shape[0] != len(pieces):
            raise ValueError(f"text encoder table has shape {table.shape}, expected ({len(pieces)}, dims)")
        self.vocab = {p: i for i, p in enumerate(pieces)}
        self.pieces = list(pieces)
        self.table = table
        self.meta = dict(meta or {})
        self.unk = self.vocab.get("[UNK]")
        self._texts = _Lru(8192)
        self._words = _Lru(65536)
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        return int(self.table.shape[1])

    # ---- files ----------------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        d = Path(directory)
        np.save(d / TABLE_FILE, self.table, allow_pickle=False)
        meta = {**self.meta, "pieces": self.pieces}
        (d / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> StaticTextEncoder:
        d = Path(directory)
        try:
            meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
            table = np.load(d / TABLE_FILE, allow_pickle=False)
            pieces = meta.pop("pieces")
            if not isinstance(pieces, list) or not all(isinstance(p, str) for p in pieces):
                raise ValueError("'pieces' must be a list of strings")
            return cls(pieces, table, meta)
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{d}: cannot read the text encoder ({META_FILE}, {TABLE_FILE}): {e}") from None

    @staticmethod
    def present(directory: str | os.PathLike) -> bool:
        return (Path(directory) / TABLE_FILE).exists()

    # ---- embedding ----------------------------------------------------------------------------------

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match WordPiece with `##` continuations (BERT's, as the encoder was trained)."""
        hit = self._words.get(word)
        if hit is not None:
            return hit
        ids: list[int] = []
        start = 0
        while start < len(word) and len(word) <= 100:
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                ids = []
                break
            ids.append(found)
            start = end
        out = tuple(ids) if ids or not word else ((self.unk,) if self.unk is not None else ())
        return self._words.put(word, out)

    def ids(self, text: str) -> list[int]:
        text = text[:MAX_CHARS]
        # ASCII (most logs): the same words as the full BERT normalizer + pre-tokenizer, by one regex
        words = _ASCII_WORDS.findall(text.lower()) if text.isascii() else _pre_tokenize(_normalize(text))
        out: list[int] = []
        for word in words:
            out.extend(self._word_ids(word))
            if len(out) >= MAX_PIECES:
                return out[:MAX_PIECES]
        return out

    def embed(self, text: str) -> np.ndarray | None:
        """The unit vector of `text` (float32, (dims,)); None for a text without word pieces."""
        with self._lock:
            if text in self._texts:
                return self._texts[text]
        ids = self.ids(text)
        v = None
        if ids:
            m = self.table[ids].astype(np.float32).mean(0)
            n = float(np.linalg.norm(m))
            v = m / n if n > 0 else None
        with self._lock:
            return self._texts.put(text, v)

    def embed_tool(self, spec: ToolSpec) -> np.ndarray | None:
        return self.embed(tool_text(spec))


def tool_text(spec: ToolSpec) -> str:
    """What a tool is embedded from: its name's words, description and parameter names."""
    params = " ".join(split_identifier(p) for p in spec.param_names)
    return f"{split_identifier(spec.name)}: {spec.description or ''} parameters: {params}"


def latest_messages(context: Context) -> tuple[str, str]:
    """(latest user message, the agent's latest non-empty text) before the decision point."""
    user = assistant = None
    for e in reversed(context.events):
        if isinstance(e, Message) and e.text:
            if user is None and e.role == "user":
                user = e.text
            elif assistant is None and e.role == "assistant":
                assistant = e.text
            if user is not None and assistant is not None:
                break
    return user or "", assistant or ""
