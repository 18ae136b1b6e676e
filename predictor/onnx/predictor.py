"""The embedded predictor: onnxruntime + numpy inside the agent's own process, no torch.

`OnnxPredictor.load(model_dir)` reads the JSON parts of a model directory (`modeldir.read_parts`), the export
manifest (`onnx.json`) and the three exported graphs (`contract.py`), and checks that they belong
together: a missing, corrupt, truncated or mismatched file is a `ModelDirError` naming the file and what
was expected. It then predicts exactly as the torch `LearnedPredictor` does, with the same featurizer and
`decode`:

1. featurize the context (event rows cached per event, so a growing session re-encodes only new events;
   argument-value candidates kept per session by `session.candidates.SessionCandidates`, which adds only
   the new events' mentions);
2. the tool set's tensors: run the `tools` graph once per distinct tool set and keep the result
   (`ToolSetCache`, keyed by the tool arrays' bytes), then the `encoder` graph -> tool logits and the
   context states;
3. build slot rows for the likeliest tools (`DecodeSettings.beam_tools`), run the `slots` graph on them;
4. decode: calibrated softmax, a small beam over slot values -> the top-k calls.

Arrays are cut to the context's own sizes (every padded axis is dynamic) and, in `predict_batch`, padded
to the longest context: one encoder run and one slot run per batch. Names fed and fetched come from the
sessions (`get_inputs()` / `get_outputs()`); the contract only says which axes may be cut.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from toolcast.data.schema import Context, Message, ToolSpec
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import SLOT_INPUTS, SPECIAL_TOOLS, Extract, Features, ToolSet
from toolcast.predictor.features.slots import SlotRow
from toolcast.predictor.modeldir import ModelDirError, ModelParts, read_parts
from toolcast.predictor.onnx.arrays import ToolSetCache, stack, trim
from toolcast.predictor.onnx.contract import (
    ENCODER,
    FEATURE_INPUTS,
    GRAPHS,
    MANIFEST_FILE,
    SLOTS,
    TOOL_SET_INPUTS,
    TOOLS,
    Variant,
)
from toolcast.predictor.onnx.decode import DecodeSettings, decode, top_tools
from toolcast.predictor.onnx.manifest import check_files, read_manifest
from toolcast.predictor.protocol import CallPrediction
from toolcast.predictor.session.candidates import SessionCandidates
from toolcast.predictor.session.featurizer import SessionFeaturizer

log = logging.getLogger(__name__)

TOOL_SET_TOKEN_AXES = ("name_tokens", "desc_tokens", "param_tokens")
# ---- the predictor -------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one context fed the graphs and got back (batch axis of 1); the export validates with it.
    encoder_inputs: the featurizer's (cut) event and tool arrays and the tool set's tensors the encoder
    takes; slot_inputs: the slot rows' arrays and the tool set's tensors the slot graph takes (the
    encoder outputs it also takes are in encoder_outputs); tool_outputs: the tools graph's outputs."""

    features: Features
    encoder_inputs: dict[str, np.ndarray]
    encoder_outputs: dict[str, np.ndarray]
    slot_inputs: dict[str, np.ndarray]
    slot_rows: list[SlotRow]
    slot_logits: np.ndarray
    tool_outputs: dict[str, np.ndarray]


def inference_session(path: Path, name: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path / name), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ModelDirError(
            path, f"{name} cannot be loaded by onnxruntime {ort.__version__} (corrupt or truncated?): {e}"
        ) from None


class OnnxPredictor:
    """The `Predictor` protocol over an exported model directory, on onnxruntime (CPU). Thread-safe:
    onnxruntime sessions may be run from several threads at once."""

    name = "learned"
    backend = "onnxruntime"

    def __init__(
        self,
        parts: ModelParts,
        sessions: dict[str, ort.InferenceSession],
        extract: Extract | None = extract_candidates,
        calibrated: bool = True,
        settings: DecodeSettings | None = None,
        variant: Variant = "float",
    ):
        self.parts, self.variant = parts, variant
        self.settings = settings or DecodeSettings()
        if extract is extract_candidates:  # the default: the same candidates, a session's pool kept
            extract = SessionCandidates()
        self.featurizer = parts.featurizer(extract)
        self.session_featurizer = SessionFeaturizer(self.featurizer)
        self.sessions = {g.name: sessions[g.name] for g in GRAPHS}
        self.inputs = {k: [i.name for i in s.get_inputs()] for k, s in self.sessions.items()}
        self.outputs = {k: [o.name for o in s.get_outputs()] for k, s in self.sessions.items()}
        cal = parts.calibration
        self.tool_t = cal.tool_temperature if calibrated else 1.0
        self.slot_t = cal.slot_temperature if calibrated else 1.0
        if variant != "float":
            self.name = f"learned-{variant}"
        if not calibrated:
            self.name += "-uncalibrated"
        self._warned_tools = False
        self._tool_sets = ToolSetCache()
        self._check_names()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        threads: int = 1,
        variant: Variant | None = None,
        calibrated: bool = True,
        **kwargs: Any,
    ) -> OnnxPredictor:
        """Load and check an exported model directory. threads: onnxruntime intra-op threads (1 suits an
        agent process; more helps only large batches). variant: "float" or "int8" (default: the one
        `toolcast export` made the default)."""
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        parts = read_parts(path)
        p = parts.path
        manifest = read_manifest(p)
        variant = variant or manifest.get("default", "float")
        files = manifest["variants"].get(variant)
        if not isinstance(files, dict) or set(files) != {g.name for g in GRAPHS}:
            hint = " --quantize int8" if variant == "int8" else ""
            raise ModelDirError(
                p,
                f"{MANIFEST_FILE} has no {variant!r} variant (exported: {', '.join(manifest['variants'])}); "
                f"run `toolcast export {p}{hint}`",
            )
        check_files(p, manifest, [n for n in manifest["files"] if not n.endswith(".onnx")], required=False)
        check_files(p, manifest, list(files.values()), required=True)
        sessions = {g.name: inference_session(p, files[g.name], threads) for g in GRAPHS}
        predictor = cls(parts, sessions, calibrated=calibrated, variant=variant, **kwargs)
        predictor._smoke_test()
        return predictor

    # ---- checks at load ----
    def _check_names(self) -> None:
        """Each graph's inputs must be arrays this featurizer makes or outputs of the graphs before it
        (`GRAPHS`' order), by name; the final outputs (tool_logits, slot_logits) must be there."""
        p = self.parts.path
        made = {
            TOOLS.name: set(TOOL_SET_INPUTS),
            ENCODER.name: set(FEATURE_INPUTS),
            SLOTS.name: set(SLOT_INPUTS),
        }
        before: dict[str, str] = {}  # output name -> graph making it
        for g in GRAPHS:
            names = self.inputs[g.name]
            known = made[g.name] | {n for n in g.inputs if n not in made[g.name]}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ModelDirError(
                    p,
                    f"the {g.name} graph expects input(s) {unknown} that this toolcast's featurizer does "
                    f"not produce (expected names from {sorted(known)}; exported by another version?)",
                )
            fed = sorted(n for n in names if n not in made[g.name])
            missing = [n for n in fed if n not in before]
            if missing:
                raise ModelDirError(
                    p,
                    f"the {g.name} graph takes {fed}, but {missing} is not an output of "
                    + ", ".join(f"the {k} graph {self.outputs[k]}" for k in self.outputs if k != g.name)
                    + " (graphs from different exports?)",
                )
            before.update({n: g.name for n in self.outputs[g.name]})
        for name, graph in (("tool_logits", ENCODER), ("slot_logits", SLOTS)):
            if name not in self.outputs[graph.name]:
                raise ModelDirError(
                    p, f"the {graph.name} graph outputs {self.outputs[graph.name]}, expected {name}"
                )

    def _smoke_test(self) -> None:
        """One run on a one-tool context: a graph that does not fit the featurizer fails here, at load,
        with the model directory named (and the first, slower run is not a user's)."""
        spec = ToolSpec("check", "", {"type": "object", "properties": {"x": {"type": "string"}}})
        context = Context(events=[Message("user", "x")], tools=[spec])
        try:
            f = self.features(context)
            self._check_shapes(TOOLS.name, f.arrays)
            self._check_shapes(ENCODER.name, f.arrays)
            self._check_shapes(SLOTS.name, self.slot_features(context, f.tools, ["check"])[0])
            self.predict(context, k=1)  # runs both graphs
        except ModelDirError:
            raise
        except Exception as e:
            raise ModelDirError(
                self.parts.path,
                f"the exported graphs do not run on this featurizer's arrays (config.json and the graphs "
                f"from different models?): {e}",
            ) from None

    def _check_shapes(self, graph: str, arrays: dict[str, np.ndarray]) -> None:
        """Fixed sizes (features per event, tool, candidate) and element types must be the featurizer's:
        a model trained with another version of the featurizer has other widths."""
        file = {g.name: g.files[self.variant] for g in GRAPHS}[graph]
        for meta in self.sessions[graph].get_inputs():
            a = arrays.get(meta.name)
            if a is None:  # another graph's output
                continue
            want = "tensor(bool)" if a.dtype == np.bool_ else f"tensor({a.dtype})"
            fixed = {i: d for i, d in enumerate(meta.shape[1:]) if isinstance(d, int)}
            bad = {i: d for i, d in fixed.items() if i >= a.ndim or a.shape[i] != d}
            if meta.type != want or len(meta.shape) != a.ndim + 1 or bad:
                raise ModelDirError(
                    self.parts.path,
                    f"{file} takes {meta.name} as {meta.type} {meta.shape[1:]} (batch axis left out), this "
                    f"toolcast's featurizer makes {want} {list(a.shape)}: the model was trained with another "
                    f"version of the featurizer (train it again with this version)",
                )

    # ---- prediction ----
    def info(self) -> dict[str, Any]:
        """What a server reports about the model (GET /v1/model)."""
        return {
            "version": f"{self.parts.path.name} ({self.backend}, {self.variant})",
            "tools": sorted(self.parts.vocab.tools),
            "card": self.parts.metrics,
        }

    def features(self, context: Context) -> Features:
        """`Featurizer.featurize(context)`, through the session fast path (`SessionFeaturizer`)."""
        context = self.featurizer.fill_tools(context)
        if len(context.tools) + len(SPECIAL_TOOLS) > self.featurizer.cfg.max_tools and not self._warned_tools:
            self._warned_tools = True  # once per predictor: an agent's tool set rarely changes
            log.warning("a context lists %d tools; this model takes %d (max_tools %d, set at training): the "
                        "rest are never predicted unless called earlier in the context", len(context.tools),
                        self.featurizer.cfg.max_tools - len(SPECIAL_TOOLS), self.featurizer.cfg.max_tools)
        return self.session_featurizer.features(context)

    def slot_features(
        self, context: Context, tools: ToolSet, slot_tools: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], list[SlotRow]]:
        """`Featurizer.slot_features`, through the session fast path (`SessionFeaturizer`)."""
        return self.session_featurizer.slot_features(context, tools, slot_tools)

    def _run(self, graph: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.sessions[graph]
        feeds = {n: arrays[n] for n in self.inputs[graph]}
        return dict(zip(self.outputs[graph], session.run(self.outputs[graph], feeds), strict=True))

    def tool_set(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The `tools` graph's outputs (no batch axis) for one context's cut tool arrays: run once per
        distinct tool set, then kept (`ToolSetCache`)."""
        key = ToolSetCache.key(arrays)
        out = self._tool_sets.get(key)
        if out is None:
            ran = self._run(TOOLS.name, {n: arrays[n][None] for n in TOOL_SET_INPUTS})
            out = {n: a[0] for n, a in ran.items()}
            self._tool_sets.put(key, out)
        return out

    def runs(self, contexts: Sequence[Context]) -> list[Run]:
        """Featurize, run the graphs once for all `contexts`; per context, what was fed and returned."""
        contexts = [self.featurizer.fill_tools(c) for c in contexts]
        feats = [self.features(c) for c in contexts]
        enc_in, tool_out = [], []
        for f in feats:
            # the tool set's token axes stay whole: only the tools graph reads them, once per tool set
            arrays = trim({n: f.arrays[n] for n in FEATURE_INPUTS}, keep=TOOL_SET_TOKEN_AXES)
            tools = self.tool_set(arrays)
            tool_out.append(tools)
            enc_in.append({**arrays, **{n: tools[n] for n in ENCODER.inputs if n in tools}})
        enc_out = self._run(ENCODER.name, stack(enc_in, self.inputs[ENCODER.name]))
        slot_in, slot_rows = [], []
        for i, (context, f) in enumerate(zip(contexts, feats, strict=True)):
            logits = enc_out["tool_logits"][i]
            n = len(f.tools.names)
            p = np.exp(logits[:n] / self.tool_t - (logits[:n] / self.tool_t).max())
            chosen = top_tools(f.tools, p, self.settings.beam_tools)
            arrays, rows = self.slot_features(context, f.tools, chosen)
            slot_in.append({**trim(arrays), **{n: tool_out[i][n] for n in SLOTS.inputs if n in tool_out[i]}})
            slot_rows.append(rows)
        if any(slot_rows):
            slot_batch = stack(slot_in, [n for n in self.inputs[SLOTS.name] if n in slot_in[0]])
            slot_batch.update({n: enc_out[n] for n in self.inputs[SLOTS.name] if n in enc_out})
            slot_logits = self._run(SLOTS.name, slot_batch)["slot_logits"]
        else:  # no likely tool has a slot (or only <respond> is left): decode reads no slot logits
            slot_logits = np.zeros((len(contexts), 1, 3), np.float32)
        out = []
        for i, f in enumerate(feats):
            out.append(
                Run(
                    f,
                    {n: a[None] for n, a in enc_in[i].items()},
                    {n: a[i : i + 1] for n, a in enc_out.items()},
                    {n: a[None] for n, a in slot_in[i].items()},
                    slot_rows[i],
                    slot_logits[i],
                    {n: a[None] for n, a in tool_out[i].items()},
                )
            )
        return out

    def _decode(self, run: Run, k: int) -> list[CallPrediction]:
        f = run.features
        return decode(
            f.tools,
            run.encoder_outputs["tool_logits"][0],
            run.slot_rows,
            run.slot_logits,
            k,
            self.tool_t,
            self.slot_t,
            self.settings,
        )

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """Top-k next calls of one context, best first by p(call) (ties by p(tool))."""
        return self._decode(self.runs([context])[0], k)

    def predict_batch(self, contexts: Sequence[Context], k: int = 3) -> list[list[CallPrediction]]:
        """`predict` for several contexts in one run of each graph (padded to the longest)."""
        if not contexts:
            return []
        return [self._decode(r, k) for r in self.runs(contexts)]
