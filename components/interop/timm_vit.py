"""timm's Vision Transformers that map onto our image towers, known by name (timm is not imported).

Two families map exactly: SigLIP's (no class token, attention-pool head, exact GELU, eps 1e-6) onto
`SiglipVisionModel`, and CLIP's (class token, a LayerNorm before the blocks, token pooling) onto
`CLIPVisionModel`. The shapes below are timm's own definitions; `tests/interop` checks every row against
timm's models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config import VisionTowerConfig
from components.interop.mapping import Link, fused, same

# size -> (width, depth, heads, mlp_ratio) as timm defines them
SIZES = {"base": (768, 12, 12, 4.0), "large": (1024, 24, 16, 4.0), "so400m": (1152, 27, 16, 3.7362),
         "huge": (1280, 32, 16, 4.0)}
NAME = re.compile(r"vit_(?P<size>base|large|so400m|huge)_patch(?P<patch>\d+)_(?P<kind>siglip|clip)"
                  r"(?P<quick>_quickgelu)?_(?P<image>\d+)")


@dataclass(frozen=True)
class TimmVit:
    name: str
    kind: str  # siglip | clip
    tower: VisionTowerConfig
    pool: str  # timm's global_pool that our tower computes

    def links(self, ours: str, theirs: str) -> list[Link]:
        """Our tower under prefix `ours` against timm's trunk under `theirs`."""
        embeddings = f"{ours}embeddings"
        siglip = self.kind == "siglip"
        links = [*same(f"{embeddings}.patch_embedding", f"{theirs}patch_embed.proj",
                       ("weight", "bias") if siglip else ("weight",)),
                 Link((f"{embeddings}.position_embedding.weight",), (f"{theirs}pos_embed",), "lead1")]
        if not siglip:
            links += [Link((f"{embeddings}.class_embedding",), (f"{theirs}cls_token",), "lead2"),
                      *same(f"{ours}pre_layrnorm", f"{theirs}norm_pre")]
        for i in range(self.tower.layers):
            mine, block = f"{ours}encoder.layers.{i}", f"{theirs}blocks.{i}"
            links += [*same(f"{mine}.layer_norm1", f"{block}.norm1"),
                      *fused(f"{mine}.self_attn", f"{block}.attn.qkv.weight", f"{block}.attn.qkv.bias"),
                      *same(f"{mine}.self_attn.out_proj", f"{block}.attn.proj"),
                      *same(f"{mine}.layer_norm2", f"{block}.norm2"),
                      *same(f"{mine}.mlp.fc1", f"{block}.mlp.fc1"), *same(f"{mine}.mlp.fc2", f"{block}.mlp.fc2")]
        links += same(f"{ours}post_layernorm", f"{theirs}norm")
        if siglip:
            head, pool, width = f"{ours}head", f"{theirs}attn_pool", self.tower.width
            links += [Link((f"{head}.probe",), (f"{pool}.latent",)),
                      *[Link((f"{head}.attention.in_proj_{n}",), (f"{pool}.q.{n}", f"{pool}.kv.{n}"), "concat",
                             (width, 2 * width)) for n in ("weight", "bias")],
                      *same(f"{head}.attention.out_proj", f"{pool}.proj"), *same(f"{head}.layernorm", f"{pool}.norm"),
                      *same(f"{head}.mlp.fc1", f"{pool}.mlp.fc1"), *same(f"{head}.mlp.fc2", f"{pool}.mlp.fc2")]
        return links


def timm_vit(name: str) -> TimmVit:
    """The tower a timm model name describes, or a refusal naming what does map."""
    match = NAME.fullmatch(name)
    if not match:
        raise ValueError(f"timm model {name!r} is not one alignops maps: it maps timm's SigLIP and CLIP ViTs, "
                         "`vit_{base,large,so400m,huge}_patch{P}_{siglip,clip}[_quickgelu]_{size}`")
    width, layers, heads, mlp_ratio = SIZES[match["size"]]
    siglip = match["kind"] == "siglip"
    act = "quick_gelu" if match["quick"] else "gelu"  # timm's SigLIP ViTs use exact GELU (big_vision: tanh)
    tower = VisionTowerConfig(kind="siglip_vit" if siglip else "clip_vit", image_size=int(match["image"]),
                              patch_size=int(match["patch"]), width=width, layers=layers, heads=heads,
                              mlp_ratio=mlp_ratio, hidden_act=act, timm_name=name)
    return TimmVit(name, match["kind"], tower, "map" if siglip else "token")


def timm_name_of(tower: VisionTowerConfig) -> str:
    """The timm name of one of our towers, where it is one of timm's (for export)."""
    if tower.timm_name:
        return timm_vit(tower.timm_name).name
    siglip = tower.kind == "siglip_vit"
    size = next((s for s, shape in SIZES.items() if shape[:3] == (tower.width, tower.layers, tower.heads)
                 and int(tower.width * shape[3]) == int(tower.width * tower.mlp_ratio)), None)
    act = tower.hidden_act or ("gelu_pytorch_tanh" if siglip else "quick_gelu")
    if size is None or (siglip and act != "gelu"):
        raise ValueError(f"the {tower.kind} image tower (width {tower.width}, {tower.layers} layers, {tower.heads} "
                         f"heads, {act}) is none of timm's SigLIP ViTs (exact GELU), which is how open_clip holds "
                         "SigLIP image towers: export it as hf or onnx")
    quick = "_quickgelu" if act == "quick_gelu" else ""
    name = f"vit_{size}_patch{tower.patch_size}_{'siglip' if siglip else 'clip'}{quick}_{tower.image_size}"
    return timm_vit(name).name
