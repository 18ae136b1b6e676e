"""The LightningModule: the model, its loss, the optimiser, and the validation figures.

The loss lives here, not in the model (its forward stays export-ready):
- next tool: -log of the probability mass on the label's tools (a parallel turn has several; any of
  them is right), over the context's candidate set;
- argument slots: cross-entropy over `<free>`, `<absent>` and the value candidates, for the slots of
  the label's first call, weighted by `slot_loss_weight`.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F

from toolcast.predictor.config import Config, TrainConfig
from toolcast.predictor.torch.model import INPUT_NAMES, NextCallModel


def tool_loss(tool_logits: torch.Tensor, tool_multi: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log sum_{t in label} p(t)."""
    log_z = torch.logsumexp(tool_logits, dim=-1)
    log_true = torch.logsumexp(tool_logits.masked_fill(~tool_multi, -1e4), dim=-1)
    return (log_z - log_true).mean()


def slot_loss(slot_logits: torch.Tensor, slot_target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the rows that have a target (-100 = padding); 0 when none has."""
    flat_t = slot_target.reshape(-1)
    if not bool((flat_t >= 0).any()):
        return slot_logits.sum() * 0.0
    return F.cross_entropy(slot_logits.reshape(-1, slot_logits.shape[-1]).float(), flat_t, ignore_index=-100)


def warmup_steps(tc: TrainConfig, total_steps: int) -> int:
    """Linear warm-up length: `tc.warmup_steps`, at most a fifth of a short run."""
    return min(tc.warmup_steps, total_steps // 5)


class NextCallModule(L.LightningModule):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.model = NextCallModel(config.model)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(*(batch[name] for name in INPUT_NAMES))

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        tool_logits, slot_logits = self(batch)
        lt = tool_loss(tool_logits, batch["tool_multi"])
        ls = slot_loss(slot_logits, batch["slot_target"])
        loss = lt + self.config.train.slot_loss_weight * ls
        bs = tool_logits.shape[0]
        on_epoch = stage != "train"
        self.log(
            f"{stage}_loss",
            loss,
            prog_bar=True,
            batch_size=bs,
            on_epoch=on_epoch,
            on_step=not on_epoch,
            sync_dist=on_epoch,
        )
        if stage != "train":
            top1 = batch["tool_multi"].gather(1, tool_logits.argmax(-1, keepdim=True)).float().mean()
            valid = batch["slot_target"] >= 0
            hit = (slot_logits.argmax(-1) == batch["slot_target"]) & valid
            slot_acc = hit.sum() / valid.sum().clamp(min=1)
            self.log_dict(
                {
                    f"{stage}_tool_loss": lt,
                    f"{stage}_slot_loss": ls,
                    f"{stage}_tool_top1": top1,
                    f"{stage}_slot_acc": slot_acc,
                },
                batch_size=bs,
                sync_dist=True,
                prog_bar=False,
            )
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def configure_optimizers(self):
        tc = self.config.train
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=tc.lr,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = warmup_steps(tc, total)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            progress = (step - warmup) / max(1, total - warmup)
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
