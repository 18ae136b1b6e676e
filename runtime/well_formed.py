"""What the runtime accepts from a predictor: well-formed predictions, arguments in canonical form.

A predictor is code the runtime does not trust to be right: a remote model behind an HTTP client, a
table, a model that returns NaN. Whatever it returns, the runtime acts only on `CallPrediction`s with
a string tool, a dict of arguments that has a canonical form (`canonical.py`), a list of free slot
names and finite probabilities (clipped to [0, 1]), the first k of them. The rest are dropped (logged
at debug level) before any worker is taken. Kept predictions are copies whose arguments are the
canonical JSON value, private to the runtime: the predictor cannot change them later.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from typing import Any

from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.canonical import canonical

log = logging.getLogger("toolcast.runtime")


def well_formed(raw: Any, k: int) -> list[CallPrediction]:
    """The first k predictions of `raw` the runtime can act on (see the module docstring)."""
    if not isinstance(raw, (list, tuple)):
        log.warning("predictor returned %s, not a list; no speculation at this point", type(raw).__name__)
        return []
    out = []
    for p in raw[:k]:
        why = malformed(p)
        cargs = None if why else canonical(p.args)
        if why is None and cargs is None:
            why = "arguments that are not JSON"
        if why:
            log.debug("[speculative] dropped a malformed prediction (%s)", why, extra={"speculative": True})
            continue
        out.append(replace(p, args=json.loads(cargs), free=list(p.free),
                           p_call=min(1.0, max(0.0, float(p.p_call))),
                           p_tool=min(1.0, max(0.0, float(p.p_tool))),
                           p_horizon=None if p.p_horizon is None else min(1.0, max(0.0, float(p.p_horizon)))))
    return out


def malformed(p: Any) -> str | None:
    """Why a prediction cannot be acted on (its arguments' canonical form aside), or None."""
    if not isinstance(p, CallPrediction):
        return f"a {type(p).__name__}, not a CallPrediction"
    if not isinstance(p.tool, str) or not p.tool:
        return "no tool name"
    if not isinstance(p.args, dict) or not all(isinstance(k, str) for k in p.args):
        return "arguments that are not an object"
    if not isinstance(p.free, (list, tuple)) or not all(isinstance(f, str) for f in p.free):
        return "free slots that are not a list of names"
    for v in (p.p_call, p.p_tool, 0.0 if p.p_horizon is None else p.p_horizon):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"a probability of {v!r}"
    return None
