"""The learned next-call model: an event-sequence transformer with a tool head and argument-slot heads.

References: docs/architecture.md ("The model"); the transformer layers are `transformers`' BERT encoder built
from a config (no downloaded weights); the pointer-style argument head follows PASTE's value mapping
(arXiv 2603.18897), scored instead of mined.

Reads top to bottom: bag-of-token pooling, the tool representation, the event encoder, the context
encoder, the two heads, and `NextCallModel` which ties them. `forward` takes the featurizer's arrays as
tensors (names in `INPUT_NAMES`) and always returns the same two outputs (`OUTPUT_NAMES`): no optional
targets, no loss (the loss lives in the LightningModule), so ONNX export is one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEncoder

from toolcast.predictor.config import ModelConfig
from toolcast.predictor.features.featurizer import (
    EVENT_INPUTS,
    N_EVENT_TYPES,
    N_GAP_BUCKETS,
    N_LEN_BUCKETS,
    N_OUT_KINDS,
    SLOT_INPUTS,
    TOOL_FEATURE_SIZES,
    TOOL_INPUTS,
)
from toolcast.predictor.features.slots import CAND_FEATURE_SIZES, SLOT_FEATURE_SIZES

INPUT_NAMES: tuple[str, ...] = EVENT_INPUTS + TOOL_INPUTS + SLOT_INPUTS
OUTPUT_NAMES: tuple[str, ...] = ("tool_logits", "slot_logits")
SLOT_FREE, SLOT_ABSENT, SLOT_FIRST_CANDIDATE = 0, 1, 2
"""slot_logits[..., 0]: the LLM invents the value; [..., 1]: the call leaves the slot out; 2+: candidates."""
MASKED = -1e4
"""Logit of a padded position: finite (exports cleanly), and exp() of it is 0 in float32."""


class BagOfTokens(nn.Module):
    """Mean of token embeddings over the non-padding ids: (..., T) -> (..., C).

    Id 0 is the embedding's `padding_idx` (a zero row that gets no gradient), so the sum needs no mask
    multiply: on this model's sizes that multiply was a third of the step time.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        count = (ids > 0).sum(-1, keepdim=True).clamp(min=1).to(self.embedding.weight.dtype)  # (..., 1)
        return self.embedding(ids).sum(-2) / count  # (..., C)


class CategoricalSum(nn.Module):
    """Sum of one embedding per categorical column: (..., K) ints -> (..., C)."""

    def __init__(self, sizes: tuple[int, ...], hidden: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, hidden) for n in sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tables[0](x[..., 0])
        for i in range(1, len(self.tables)):
            out = out + self.tables[i](x[..., i])
        return out


class ToolEncoder(nn.Module):
    """repr(t) = learned id embedding + projection of (name, description, parameter-name) token means.

    The text part is what places an unseen tool near similar known ones; `tool_id_dropout` hides ids in
    training so the model cannot lean on the id alone.
    """

    def __init__(self, cfg: ModelConfig, bag: BagOfTokens):
        super().__init__()
        self.bag = bag
        self.ids = nn.Embedding(cfg.n_tool_ids, cfg.hidden)
        self.text = nn.Linear(3 * cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.id_dropout = cfg.tool_id_dropout

    def forward(
        self, tool_id: torch.Tensor, name: torch.Tensor, desc: torch.Tensor, params: torch.Tensor
    ) -> torch.Tensor:
        if self.training and self.id_dropout > 0:
            keep = torch.rand(tool_id.shape, device=tool_id.device) >= self.id_dropout
            tool_id = torch.where(keep | (tool_id <= 2), tool_id, torch.zeros_like(tool_id))
        text = torch.cat([self.bag(name), self.bag(desc), self.bag(params)], dim=-1)  # (B, C, 3H)
        return self.norm(self.ids(tool_id) + self.text(text))  # (B, C, H)


class ContextEncoder(nn.Module):
    """Event vectors -> BERT encoder layers -> per-position states; position = recency (0 = summary)."""

    def __init__(self, cfg: ModelConfig, bag: BagOfTokens):
        super().__init__()
        h = cfg.hidden
        self.bag, self.use_text = bag, cfg.use_text
        self.event_type = nn.Embedding(N_EVENT_TYPES, h)
        self.num = CategoricalSum((N_LEN_BUCKETS, N_OUT_KINDS, N_GAP_BUCKETS), h)
        self.agent = nn.Embedding(cfg.n_agents, h)
        self.keys = nn.Linear(h, h, bias=False)
        self.text = nn.Linear(h, h, bias=False)
        self.position = nn.Embedding(cfg.max_events + 1, h)
        self.norm = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        bert = BertConfig(
            hidden_size=h,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.intermediate,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
            max_position_embeddings=cfg.max_events + 1,
            vocab_size=1,
            attn_implementation="eager",
        )
        self.encoder = BertEncoder(bert)

    def forward(self, ev_type, ev_tool, ev_num, ev_keys, ev_text, ev_mask, agent, tool_repr):
        b, n = ev_type.shape
        # Tool of each call event, from the same representations the tool head scores (0 = none).
        table = torch.cat([torch.zeros_like(tool_repr[:, :1]), tool_repr], dim=1)  # (B, C+1, H)
        tool_vec = torch.gather(table, 1, ev_tool.unsqueeze(-1).expand(-1, -1, table.shape[-1]))  # (B, N, H)
        x = self.event_type(ev_type) + tool_vec + self.num(ev_num) + self.keys(self.bag(ev_keys))
        if self.use_text:
            x = x + self.text(self.bag(ev_text))
        is_summary = (torch.arange(n, device=x.device) == 0).to(x.dtype).view(1, n, 1)
        x = x + is_summary * self.agent(agent).unsqueeze(1)
        x = x + self.position.weight[:n].unsqueeze(0)
        x = self.drop(self.norm(x))  # (B, N, H)
        additive = (~ev_mask).to(x.dtype)[:, None, None, :] * MASKED  # (B, 1, 1, N)
        return self.encoder(x, attention_mask=additive).last_hidden_state  # (B, N, H)


class ToolHead(nn.Module):
    """score(t) = <h, W repr'(t)> + MLP(h, repr'(t)); repr' adds what the context did with t."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.context = CategoricalSum(TOOL_FEATURE_SIZES, h)
        self.query = nn.Linear(h, h)
        self.mlp_h, self.mlp_t = nn.Linear(h, h), nn.Linear(h, h)
        self.mlp_out = nn.Linear(h, 1)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, state: torch.Tensor, tool_repr: torch.Tensor, tool_num: torch.Tensor, tool_mask: torch.Tensor
    ) -> torch.Tensor:
        t = tool_repr + self.context(tool_num)  # (B, C, H)
        bilinear = (t * self.query(state).unsqueeze(1)).sum(-1) / t.shape[-1] ** 0.5  # (B, C)
        z = self.drop(F.gelu(self.mlp_h(state).unsqueeze(1) + self.mlp_t(t)))
        logits = bilinear + self.mlp_out(z).squeeze(-1)
        return logits.masked_fill(~tool_mask, MASKED)


class SlotHead(nn.Module):
    """Pointer over value candidates: MLP([h, repr(t, s), state of the source event, features])."""

    def __init__(self, cfg: ModelConfig, bag: BagOfTokens):
        super().__init__()
        h = cfg.hidden
        self.bag = bag
        self.slot_num = CategoricalSum(SLOT_FEATURE_SIZES, h)
        self.slot_name = nn.Linear(h, h, bias=False)
        self.cand_num = CategoricalSum(CAND_FEATURE_SIZES, h)
        self.cand_key = nn.Linear(h, h, bias=False)
        self.slot_in = nn.Linear(2 * h, h)
        self.cand_in = nn.Linear(2 * h, h)
        self.score = nn.Sequential(
            nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1)
        )
        self.special = nn.Sequential(nn.GELU(), nn.Linear(h, 2))  # (free, absent) from the slot alone

    def forward(
        self,
        state,
        states,
        tool_repr,
        slot_tool,
        slot_num,
        slot_name,
        slot_mask,
        cand_num,
        cand_key,
        cand_event,
        cand_mask,
    ):
        b, s, m = cand_event.shape
        hdim = state.shape[-1]
        tool_vec = torch.gather(tool_repr, 1, slot_tool.unsqueeze(-1).expand(-1, -1, hdim))  # (B, S, H)
        slot = tool_vec + self.slot_name(self.bag(slot_name)) + self.slot_num(slot_num)  # (B, S, H)
        q = self.slot_in(torch.cat([slot, state.unsqueeze(1).expand(-1, s, -1)], dim=-1))  # (B, S, H)
        src = torch.gather(states, 1, cand_event.reshape(b, s * m, 1).expand(-1, -1, hdim)).view(
            b, s, m, hdim
        )
        cand = self.cand_num(cand_num) + self.cand_key(self.bag(cand_key))  # (B, S, M, H)
        c = self.cand_in(torch.cat([cand, src], dim=-1))  # (B, S, M, H)
        cand_logits = self.score(q.unsqueeze(2) + c).squeeze(-1).masked_fill(~cand_mask, MASKED)  # (B, S, M)
        logits = torch.cat([self.special(q), cand_logits], dim=-1)  # (B, S, M + 2)
        return logits.masked_fill(~slot_mask.unsqueeze(-1), 0.0)


class NextCallModel(nn.Module):
    """forward(inputs) -> (tool_logits (B, C), slot_logits (B, S, M + 2)). Calibration is applied outside."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.text_vocab_size, cfg.hidden, padding_idx=0)
        bag = BagOfTokens(self.tokens)
        self.tools = ToolEncoder(cfg, bag)
        self.context = ContextEncoder(cfg, bag)
        self.tool_head = ToolHead(cfg)
        self.slot_head = SlotHead(cfg, bag)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    def encode(
        self,
        ev_type,
        ev_tool,
        ev_num,
        ev_keys,
        ev_text,
        ev_mask,
        agent,
        tool_id,
        tool_num,
        tool_name,
        tool_desc,
        tool_params,
        tool_mask,
    ):
        """Context and tools -> (tool_logits (B, C), state (B, H), states (B, N, H), tool_repr (B, C, H))."""
        tool_repr = self.tools(tool_id, tool_name, tool_desc, tool_params)  # (B, C, H)
        states = self.context(
            ev_type, ev_tool, ev_num, ev_keys, ev_text, ev_mask, agent, tool_repr
        )  # (B, N, H)
        state = states[:, 0] if self.cfg.pooling == "summary" else _masked_mean(states, ev_mask)  # (B, H)
        return self.tool_head(state, tool_repr, tool_num, tool_mask), state, states, tool_repr

    def score_slots(self, state, states, tool_repr, *slots):
        """Slot rows of any tools of the candidate set -> slot_logits (B, S, M + 2). `slots`: the arrays
        named in `SLOT_INPUTS`, in that order."""
        return self.slot_head(state, states, tool_repr, *slots)

    def forward(self, *inputs):
        """The arrays named in `INPUT_NAMES`, in that order -> (tool_logits, slot_logits)."""
        n = len(EVENT_INPUTS) + len(TOOL_INPUTS)
        tool_logits, state, states, tool_repr = self.encode(*inputs[:n])
        return tool_logits, self.score_slots(state, states, tool_repr, *inputs[n:])


def _masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(states.dtype).unsqueeze(-1)
    return (states * w).sum(1) / w.sum(1).clamp(min=1.0)
