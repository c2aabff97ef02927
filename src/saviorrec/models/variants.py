"""The ranker variants: the one list of names, and what each variant feeds the ranker.

Every variant is the same :class:`~saviorrec.models.ranker.Ranker` with different switches, so
baselines and ablations are trained and scored by the same code. Plain data, no torch: the
params schema (``saviorrec.config.model.RankerVariant``) and the benches read the names here.
"""

from __future__ import annotations

from dataclasses import dataclass

# The four target attention blocks (saviorrec.models.target_attention), in output order:
# name -> (query/key space, value space).
BLOCKS: dict[str, tuple[str, str]] = {
    "modal": ("modal", "modal"),
    "modal2behav": ("modal", "behavior"),
    "behav2modal": ("behavior", "modal"),
    "behavior": ("behavior", "behavior"),
}
ALL_BLOCKS = tuple(BLOCKS)


@dataclass(frozen=True)
class VariantSpec:
    content: str | None            # workspace path name of the item vectors ("embeddings" | "text_features")
    sids: str | None               # workspace path name of the SID table ("sids" | "sids_generic")
    mba: bool                      # SIDs feed the MBA block (else, with sids, they are ID-like tokens)
    blocks: tuple[str, ...]        # target attention blocks
    neural: bool = True


VARIANTS: dict[str, VariantSpec] = {
    "id_only": VariantSpec(None, None, False, ("behavior",)),
    "content_frozen": VariantSpec("text_features", None, False, ALL_BLOCKS),
    "sid_ids": VariantSpec(None, "sids_generic", False, ("behavior",)),
    "saviorrec": VariantSpec("embeddings", "sids", True, ALL_BLOCKS),
    "saviorrec_no_mba": VariantSpec("embeddings", None, False, ALL_BLOCKS),
    "saviorrec_no_bidir": VariantSpec("embeddings", "sids", True, ("modal", "behavior")),
    "saviorrec_generic_encoder": VariantSpec("text_features", "sids_generic", True, ALL_BLOCKS),
    "heuristic": VariantSpec(None, None, False, (), neural=False),
}
VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)
