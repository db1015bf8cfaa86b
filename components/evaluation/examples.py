"""A picture of retrieval: for a few text queries, the top-ranked images, the correct one framed green."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from components.data.manifest import resolve_image  # noqa: E402
from components.evaluation.embed import EncodedSplit  # noqa: E402


def retrieval_grid(encoded: EncodedSplit, dataset_dir: Path, path: Path, queries: int = 4, k: int = 5) -> Path:
    step = max(1, len(encoded.captions) // queries)
    picked = list(range(0, len(encoded.captions), step))[:queries]
    fig, axes = plt.subplots(len(picked), k, figsize=(1.6 * k + 2.6, 1.7 * len(picked)), squeeze=False)
    for row, j in enumerate(picked):
        top = torch.topk(encoded.text_emb[j] @ encoded.image_emb.T, k=min(k, len(encoded.image_paths))).indices
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([]), ax.set_yticks([])
            if col >= len(top):
                continue
            i = int(top[col])
            ax.imshow(Image.open(resolve_image(dataset_dir, encoded.image_paths[i])).convert("RGB"))
            hit = i == int(encoded.text_to_image[j])
            for spine in ax.spines.values():
                spine.set(color="green" if hit else "lightgray", linewidth=4 if hit else 1)
        axes[row][0].set_ylabel("\n".join(textwrap.wrap(encoded.captions[j], 26)), rotation=0, ha="right",
                                va="center", fontsize=7)
    fig.suptitle(f"text -> image, top {k} (green: the captioned image)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
