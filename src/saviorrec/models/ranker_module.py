"""LightningModule around :class:`~saviorrec.models.ranker.Ranker`: CTR loss + ESMM CTCVR loss.

CTCVR is learned over the whole impression space as pCTR * pCVR against ``click * conversion``
(ESMM), only on rows whose conversion is known (``conversion >= 0``); with no conversion
labels at all the CVR head is simply not trained.

With ``sparse_ids`` the item-ID table gets sparse gradients and its own ``SparseAdam`` (Adam
takes dense gradients only), so a step updates the batch's rows instead of the whole catalog;
every other weight keeps Adam (with ``weight_decay``; SparseAdam has none). Two optimizers are
stepped by hand (Lightning's manual optimization), one optimizer the same way.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from saviorrec.models.ranker import Ranker, RankerConfig


def ctcvr_log_prob(ctr_logit: torch.Tensor, cvr_logit: torch.Tensor) -> torch.Tensor:
    return F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)


def ranker_losses(model: Ranker, batch: dict[str, torch.Tensor], ctcvr_weight: float) -> dict[str, torch.Tensor]:
    ctr_logit, cvr_logit = model(batch)
    ctr = F.binary_cross_entropy_with_logits(ctr_logit, batch["click"])
    known = batch["conversion"] >= 0
    if known.any():
        log_p = ctcvr_log_prob(ctr_logit[known], cvr_logit[known]).clamp(max=-1e-6)
        y = batch["conversion"][known] * batch["click"][known]
        ctcvr = -(y * log_p + (1 - y) * torch.log1p(-torch.exp(log_p))).mean()
    else:
        ctcvr = ctr.new_zeros(())
    return {"loss": ctr + ctcvr_weight * ctcvr, "ctr_loss": ctr, "ctcvr_loss": ctcvr}


def optimizer_list(module: RankerModule) -> list[torch.optim.Optimizer]:
    """The module's optimizers as a list (one, or two with sparse ID gradients), for a plain loop."""
    configured = module.configure_optimizers()
    return configured if isinstance(configured, list) else [configured]


class RankerModule(L.LightningModule):
    def __init__(self, config: dict, lr: float, weight_decay: float = 0.0, ctcvr_weight: float = 1.0):
        super().__init__()
        self.save_hyperparameters()
        self.model = Ranker(RankerConfig(**config))
        self.curve: list[dict] = []  # per-epoch mean losses (the training-curve plot)
        self._sums: dict[str, torch.Tensor] = {}  # on the training device: no host sync per step
        self._count = 0
        self.automatic_optimization = False  # one or two optimizers, stepped together in training_step

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        losses = ranker_losses(self.model, batch, self.hparams.ctcvr_weight)
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(losses["loss"])
        for optimizer in optimizers:
            optimizer.step()
        n = len(batch["click"])
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.detach() * n
        self._count += n
        self.log("train_loss", losses["loss"], prog_bar=True, batch_size=n)
        return losses["loss"]

    def on_train_epoch_end(self) -> None:
        if self._count:
            self.curve.append({"epoch": self.current_epoch, "samples": self._count,
                               **{k: float(v) / self._count for k, v in self._sums.items()}})
        self._sums, self._count = {}, 0

    def configure_optimizers(self):
        lr, weight_decay = self.hparams.lr, self.hparams.weight_decay
        if not self.model.cfg.sparse_ids:
            return torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        ids = self.model.item_id.weight
        dense = [p for p in self.parameters() if p is not ids]
        return [torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay), torch.optim.SparseAdam([ids], lr=lr)]
