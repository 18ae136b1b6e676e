"""The semantic expert: which listed tool the conversation is about, by a frozen pretrained text encoder.

Neither the model's own text tokens (learned from scratch on the logs) nor the pattern pool's counts know a
tool they never saw. A pretrained sentence encoder does: "duplicate it" is near `cp`, "what did I order"
near `get_order_details`. This expert embeds the latest user message and the agent's latest text
(`features.text_encoder.StaticTextEncoder`, a static table distilled from all-MiniLM-L6-v2) and each listed
tool's text (name words, description, parameter names), and scores tool t by the sum of its cosines with
the two texts:

    p(t) ∝ exp(SHARPNESS · cos_sum(t))   over the context's listed tools,

with `<respond>` given the geometric mean of the tools' p, so it neither pushes towards nor away from
answering when pooled log-linearly (`predictor/pooling.py`, which fits the weight that scales it). It names
tools and fills no arguments. A context without a tool list, or without text, gets no answer (the pool
then ignores this expert there). NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

from toolcast.data.schema import RESPOND, Context
from toolcast.predictor.features.text_encoder import StaticTextEncoder, latest_messages
from toolcast.predictor.protocol import CallPrediction

SHARPNESS = 20.0
"""Logit per unit of summed cosine before pooling; the pool's weight for this expert rescales it."""


class SemanticPredictor:
    name = "semantic"

    def __init__(self, encoder: StaticTextEncoder):
        self.encoder = encoder

    def tool_distribution(self, context: Context) -> dict[str, float]:
        specs = {t.name: t for t in context.tools}
        if not specs:
            return {}
        queries = [q for q in (self.encoder.embed(t) for t in latest_messages(context) if t) if q is not None]
        if not queries:
            return {}
        names = sorted(specs)
        tools = np.stack([self._tool(specs[n]) for n in names])
        cos = sum(tools @ q for q in queries)
        logits = SHARPNESS * np.asarray(cos, np.float64)
        respond = float(logits.mean())
        z = np.append(logits, respond)
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        out = dict(zip(names, p[:-1].tolist(), strict=True))
        out[RESPOND] = float(p[-1])
        return out

    def _tool(self, spec) -> np.ndarray:
        v = self.encoder.embed_tool(spec)
        return v if v is not None else np.zeros(self.encoder.dims, np.float32)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        dist = self.tool_distribution(context)
        ranked = sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, k)]
        return [CallPrediction(t, p_tool=p, p_call=p) if t == RESPOND
                else CallPrediction(t, free=["*"], p_tool=p, p_call=0.0) for t, p in ranked
                if math.isfinite(p)]
