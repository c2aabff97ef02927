"""The CTR/CTCVR ranker: behavior IDs, frozen content (z or MiniLM) with optional MBA, target attentions, DNN.

Every variant is this one ``nn.Module`` with different switches
(:data:`saviorrec.models.variants.VARIANTS`), so baselines and ablations are trained and scored
by the same code. The LightningModule around it is ``ranker_module``; training is
``ranker_training``; saving and loading a trained ranker is ``ranker_artifacts``.

Item representations (both of width ``id_dim``):
- behavior space: item-ID embedding + category embedding (+ SID-token embeddings for ``sid_ids``);
- multimodal space: ``Linear(z~)`` with ``z~ = z + MBA(sid)`` (or ``z`` without MBA).
The DNN sees the attention outputs, the candidate in both spaces and the dense online
counters (``saviorrec.data.samples.DENSE_FEATURES``) and has two heads: pCTR and pCVR;
pCTCVR = pCTR * pCVR (ESMM).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from saviorrec.models.mba import MBA
from saviorrec.models.target_attention import BLOCKS, BiDirectionalAttention
from saviorrec.models.variants import VARIANTS

OOV_ROW = 1  # the behavior-ID row of items unseen at training time (saviorrec.data.samples.IdVocab.OOV)
N_CONTENT_STATS = 4  # mean, max, top-3 mean cosine, share above 0.5 (Ranker.match_features)


@dataclass
class RankerConfig:
    variant: str
    n_ids: int
    n_categories: int
    dense_dim: int
    content_dim: int = 0
    levels: int = 0
    codebook_size: int = 0
    id_dim: int = 32
    attn_dim: int = 32
    mba_hidden: int = 64
    dnn_hidden: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1
    id_dropout: float = 0.0             # training only: share of candidates whose ID row is swapped for OOV
    attention_pooling: str = "softmax"  # "softmax" | "sigmoid" (DIN: keeps the match count)
    prior_feature: int = -1             # dense column added to the CTR logit (wide part); -1 = none
    interactions: bool = False          # explicit candidate x history match features (see ``match_features``)
    sparse_ids: bool = False            # item-ID table with sparse gradients (``ranker_module``: SparseAdam)

    def to_dict(self) -> dict:
        return asdict(self)


class Ranker(nn.Module):
    def __init__(self, cfg: RankerConfig):
        super().__init__()
        spec = VARIANTS[cfg.variant]
        if not spec.neural:
            raise ValueError(f"variant {cfg.variant!r} is not a neural ranker")
        if spec.content and cfg.content_dim <= 0:
            raise ValueError(f"variant {cfg.variant!r} needs item vectors ({spec.content})")
        if spec.sids and (cfg.levels <= 0 or cfg.codebook_size <= 0):
            raise ValueError(f"variant {cfg.variant!r} needs semantic IDs ({spec.sids})")
        self.cfg, self.spec = cfg, spec
        d = cfg.id_dim
        # the one table that grows with the catalog: with sparse gradients a step costs the batch's
        # rows, not the whole catalog (a dense Adam step on 1M rows is half of a training step)
        self.item_id = nn.Embedding(cfg.n_ids, d, padding_idx=0, sparse=cfg.sparse_ids)
        nn.init.normal_(self.item_id.weight, std=0.01)  # unseen items stay near the "generic item"
        with torch.no_grad():
            self.item_id.weight[0].zero_()
        self.category = nn.Embedding(cfg.n_categories + 1, d)
        nn.init.normal_(self.category.weight, std=0.01)
        self.sid_tokens = None
        if spec.sids and not spec.mba:
            self.sid_tokens = nn.ModuleList(nn.Embedding(cfg.codebook_size + 1, d) for _ in range(cfg.levels))
            for table in self.sid_tokens:
                nn.init.normal_(table.weight, std=0.01)
        self.mba = MBA(cfg.levels, cfg.codebook_size, cfg.content_dim, d, cfg.mba_hidden) if spec.mba else None
        self.modal_proj = nn.Linear(cfg.content_dim, d) if spec.content else None
        self.attention = BiDirectionalAttention(list(spec.blocks), d, cfg.attn_dim, cfg.attention_pooling)
        width = self.attention.out_dim + d + (d if spec.content else 0) + cfg.dense_dim
        if cfg.interactions:
            width += len(self.attention.blocks) + (N_CONTENT_STATS if spec.content else 0)
        self.dense_norm = nn.BatchNorm1d(cfg.dense_dim)
        layers: list[nn.Module] = []
        for hidden in cfg.dnn_hidden:
            layers += [nn.Linear(width, hidden), nn.SiLU(), nn.Dropout(cfg.dropout)]
            width = hidden
        self.trunk = nn.Sequential(*layers)
        self.ctr_head = nn.Linear(width, 1)
        self.cvr_head = nn.Linear(width, 1)
        if cfg.prior_feature >= cfg.dense_dim:
            raise ValueError(f"prior_feature {cfg.prior_feature} is not a dense column (dense_dim {cfg.dense_dim})")
        # starts as the prior itself; the DNN head starts near zero and learns the correction
        self.prior_scale = nn.Parameter(torch.ones(())) if cfg.prior_feature >= 0 else None
        if self.prior_scale is not None:
            nn.init.zeros_(self.ctr_head.weight)
            nn.init.zeros_(self.ctr_head.bias)

    def _sid_codes(self, sid: torch.Tensor) -> torch.Tensor:
        size = self.cfg.codebook_size
        return torch.where((sid < 0) | (sid >= size), torch.full_like(sid, size), sid)

    def behavior(self, ids: torch.Tensor, cats: torch.Tensor, sid: torch.Tensor | None) -> torch.Tensor:
        rep = self.item_id(ids) + self.category(cats)
        if self.sid_tokens is not None:
            codes = self._sid_codes(sid)
            for level, table in enumerate(self.sid_tokens):
                rep = rep + table(codes[..., level])
        return rep

    def modal(self, content: torch.Tensor, sid: torch.Tensor | None) -> torch.Tensor:
        if self.mba is not None:
            content = self.mba(content, sid)
        return self.modal_proj(content)

    def match_features(self, cand: dict[str, torch.Tensor], attended: torch.Tensor, batch: dict[str, torch.Tensor],
                       mask: torch.Tensor) -> list[torch.Tensor]:
        """How well the candidate matches the history, as numbers the DNN need not learn to compute.

        An MLP is poor at dot products, and a softmax-pooled history looks alike whether one or
        ten past clicks resemble the candidate. Per attention block: <candidate query, pooled
        value> (same space blocks); for frozen content: mean, max and top-3 mean cosine between
        the candidate and the valid history items, and the share of history above 0.5 cosine.
        """
        d = self.cfg.id_dim
        feats = []
        for i, name in enumerate(self.attention.blocks):
            qk, v = BLOCKS[name]
            feats.append((cand[v] * attended[:, i * d:(i + 1) * d]).sum(-1, keepdim=True) / d ** 0.5)
        if self.modal_proj is not None:
            c = nn.functional.normalize(batch["cand_content"], dim=-1)
            h = nn.functional.normalize(batch["hist_content"], dim=-1)
            cos = torch.einsum("bd,bnd->bn", c, h)
            valid = mask.float()
            n = valid.sum(-1).clamp(min=1.0)
            low = torch.finfo(cos.dtype).min
            top = cos.masked_fill(~mask, low).topk(min(3, cos.shape[1]), dim=-1).values
            real = top > low / 2  # fewer valid positions than k: average only the real ones
            top = torch.where(real, top, torch.zeros_like(top))
            top_mean = top.sum(-1, keepdim=True) / real.sum(-1, keepdim=True).clamp(min=1)
            feats += [((cos * valid).sum(-1) / n).unsqueeze(-1), top[:, :1], top_mean,
                      (((cos > 0.5).float() * valid).sum(-1) / n).unsqueeze(-1)]
        return feats

    def represent(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(candidate, history) in each space: {"behavior": [B, d] / [B, N, d], "modal": ... with content}."""
        cand_id = batch["cand_id"]
        if self.training and self.cfg.id_dropout > 0:
            # Cold-start practice (DropoutNet): every training item has a trained ID row, but a
            # new item at serving time reads the OOV row. Dropping IDs trains that row and
            # teaches the DNN to lean on content when the ID says nothing.
            drop = torch.rand(cand_id.shape, device=cand_id.device) < self.cfg.id_dropout
            cand_id = torch.where(drop & (cand_id > 0), torch.full_like(cand_id, OOV_ROW), cand_id)
        cand = {"behavior": self.behavior(cand_id, batch["cand_cat"], batch.get("cand_sid"))}
        seq = {"behavior": self.behavior(batch["hist_id"], batch["hist_cat"], batch.get("hist_sid"))}
        if self.modal_proj is not None:
            cand["modal"] = self.modal(batch["cand_content"], batch.get("cand_sid"))
            seq["modal"] = self.modal(batch["hist_content"], batch.get("hist_sid"))
        return cand, seq

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (ctr, cvr), each [B]. Keys: see ``saviorrec.data.samples.encode_batch``."""
        mask = batch["hist_mask"].bool()
        cand, seq = self.represent(batch)
        parts = [cand[space] for space in ("behavior", "modal") if space in cand]
        attended = self.attention(cand, seq, mask)
        if self.cfg.interactions:
            parts += self.match_features(cand, attended, batch, mask)
        hidden = self.trunk(torch.cat([attended, *parts, self.dense_norm(batch["dense"])], dim=-1))
        ctr = self.ctr_head(hidden).squeeze(-1)
        if self.prior_scale is not None:
            ctr = ctr + self.prior_scale * batch["dense"][:, self.cfg.prior_feature]
        return ctr, self.cvr_head(hidden).squeeze(-1)
