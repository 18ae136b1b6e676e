"""Text to token ids: a WordPiece tokenizer trained on the logs, and a pure-Python encoder for it.

Training uses Hugging Face `tokenizers` (imported lazily: only `toolcast train` needs it) and saves its
standard `tokenizer.json`. Encoding at prediction time reads that same JSON in pure Python, so the
embedded predictor needs neither `tokenizers` nor torch; a test checks that both give the same ids.
The pipeline is BERT's uncased one: clean + lowercase + strip accents, split on whitespace and
punctuation, then greedy longest-match WordPiece with `##` continuations.

Identifiers (tool, slot and JSON key names) are split into words first, `getOrderDetails` and
`get_order_details` both giving "get order details", so they share tokens with descriptions and text.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

PAD, UNK = "[PAD]", "[UNK]"
SPECIALS: tuple[str, ...] = (PAD, UNK)
"""Id 0 is padding (embeddings ignore it when pooling), id 1 unknown."""
CONTINUATION = "##"
MAX_WORD_CHARS = 100
MAX_TEXT_CHARS = 600
"""Only the head of a text is encoded: the model keeps its first tokens anyway."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[_\-.\s/:]+")


def split_identifier(name: str) -> str:
    """`getOrderDetails` / `get_order_details` / `GorillaFileSystem.cd` -> words separated by spaces."""
    return " ".join(p for p in _NON_WORD.split(_CAMEL.sub(" ", name)) if p).lower()


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000, min_frequency: int = 2,
                    chars: Iterable[str] | None = None) -> str:
    """Train the WordPiece tokenizer on `texts`; return its `tokenizer.json` text. The same texts give the
    same tokenizer, run after run. chars: every character of the texts (a superset will do); None: read
    from `texts`, which are then held in memory."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if chars is None:
        texts = list(texts)
        chars = set().union(*texts)
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    # The trainer numbers the continuation pieces ("##e") in hash order, which is random per process, and
    # breaks ties between equally frequent merges by number: the vocabulary learnt changed from run to
    # run. Declared up front as special tokens (dropped from the added tokens below), they are numbered
    # in sorted order. The normalizer maps character by character, so normalizing each character covers
    # every normalized text's; punctuation is always a word of its own, never a continuation.
    pieces = {n for c in set(chars) for n in normalizer.normalize_str(c)}
    continuations = sorted(CONTINUATION + n for n in pieces if not n.isspace() and not _is_punct(n))
    tok = Tokenizer(
        models.WordPiece(
            unk_token=UNK, continuing_subword_prefix=CONTINUATION, max_input_chars_per_word=MAX_WORD_CHARS
        )
    )
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIALS, *continuations],
        continuing_subword_prefix=CONTINUATION,
        show_progress=False,
    )
    tok.train_from_iterator((t[:MAX_TEXT_CHARS] for t in texts), trainer=trainer)
    doc = json.loads(tok.to_str())
    doc["added_tokens"] = [a for a in doc["added_tokens"] if a["content"] in SPECIALS]  # pieces, not specials
    return json.dumps(doc, ensure_ascii=False)


_ASCII_PUNCT = ((33, 47), (58, 64), (91, 96), (123, 126))
"""ASCII characters BERT counts as punctuation (besides Unicode category P)."""


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _ASCII_PUNCT):
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _normalize(text: str) -> str:
    """BertNormalizer: drop control chars, whitespace to spaces, space out CJK, lowercase, strip accents."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        cat = unicodedata.category(ch)
        if ch in "\t\n\r" or cat == "Zs":
            out.append(" ")
        elif cat.startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


_ASCII_CLEAN = {cp: " " if chr(cp) in "\t\n\r" else None for cp in (*range(32), 127)}
"""`_normalize` on ASCII: tab, newline, return -> space; the other control characters (category Cc:
0-31, 127) dropped; no other ASCII character is changed but by lowercasing (no accents, no CJK)."""
_PUNCT_CLASS = "".join(f"\\x{lo:02x}-\\x{hi:02x}" for lo, hi in _ASCII_PUNCT)
_ASCII_WORDS = re.compile(f"[^ {_PUNCT_CLASS}]+|[{_PUNCT_CLASS}]")
"""`_pre_tokenize` on normalized ASCII (a space its only whitespace): runs of other characters, and each
punctuation character as a word of its own."""


class _CharTable(dict):
    """A `str.translate` table that computes a character's replacement the first time it is met (and
    keeps it): the per-character rules run once per distinct character, not once per character read."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def __missing__(self, cp: int) -> str:
        out = self[cp] = self.rule(chr(cp))
        return out


def _clean_char(ch: str) -> str:
    """`_normalize`'s first step for one character: dropped, a space, spaced out (CJK) or itself."""
    cp = ord(ch)
    if cp == 0 or cp == 0xFFFD:
        return ""
    cat = unicodedata.category(ch)
    if ch in "\t\n\r" or cat == "Zs":
        return " "
    if cat.startswith("C"):
        return ""
    return f" {ch} " if _is_cjk(cp) else ch


def _split_char(ch: str) -> str:
    """After NFD: an accent mark (Mn) dropped, a punctuation character spaced out (a word of its own)."""
    if unicodedata.category(ch) == "Mn":
        return ""
    return f" {ch} " if _is_punct(ch) else ch


_CLEAN = _CharTable(_clean_char)
_SPLIT = _CharTable(_split_char)


def words(text: str) -> list[str]:
    """The words BERT's normalizer and pre-tokenizer make of `text`. ASCII text (the logs' usual case)
    takes a fast path with the same result: one `str.translate` and one regular expression instead of
    a Python loop per character (~0.2 ms for a 600-character output); other text two `str.translate`
    passes over per-character tables and a split (`_pre_tokenize(_normalize(text))`, the specification,
    gives the same words)."""
    if text.isascii():
        return _ASCII_WORDS.findall(text.translate(_ASCII_CLEAN).lower())
    return unicodedata.normalize("NFD", text.translate(_CLEAN).lower()).translate(_SPLIT).split()


def _pre_tokenize(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace; every punctuation character is a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        cur = []
        for ch in chunk:
            if _is_punct(ch):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
    return words


class TextEncoder:
    """Encodes text with a trained `tokenizer.json`, in pure Python (no `tokenizers` needed)."""

    def __init__(self, vocab: dict[str, int]):
        if vocab.get(PAD) != 0 or vocab.get(UNK) != 1:
            raise ValueError(f"tokenizer vocabulary must map {PAD} to 0 and {UNK} to 1")
        self.vocab = vocab
        self._word = lru_cache(maxsize=65536)(self._word_ids)

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    @classmethod
    def from_json(cls, text: str) -> TextEncoder:
        try:
            d = json.loads(text)
            model = d["model"]
            if model.get("type") != "WordPiece":
                raise ValueError(f"expected a WordPiece model, got {model.get('type')!r}")
            vocab = model["vocab"]
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a tokenizer.json of a WordPiece tokenizer: {e}") from None
        return cls({str(k): int(v) for k, v in vocab.items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextEncoder:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def _word_ids(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (1,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (1,)
            ids.append(found)
            start = end
        return tuple(ids)

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of the head of `text` (at most `max_tokens`)."""
        ids: list[int] = []
        for word in words(text[:MAX_TEXT_CHARS]):
            ids.extend(self._word(word))
            if max_tokens is not None and len(ids) >= max_tokens:
                return ids[:max_tokens]
        return ids

    def encode_identifier(self, name: str, max_tokens: int | None = None) -> list[int]:
        return self.encode(split_identifier(name), max_tokens)
