"""Second views of a batch for in-modality contrast (CleanCLIP): each image randomly cropped, resized back
and maybe flipped; each caption with a share of its words deleted and two of them swapped. Drawn from a
generator seeded by the step, so a resumed run sees the views the original saw."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from components.config import TokenizerConfig

MIN_AREA = 0.5  # of the image a crop keeps at least
DELETE_SHARE = 0.15  # of a caption's tokens deleted


def image_views(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) -> views of the same shape."""
    _, _, height, width = pixels.shape
    views = []
    for image in pixels:
        area = MIN_AREA + (1 - MIN_AREA) * float(torch.rand((), generator=generator))
        aspect = math.exp(math.log(3 / 4) + math.log(16 / 9) * float(torch.rand((), generator=generator)))
        h = min(height, max(1, round(math.sqrt(area * height * width / aspect))))
        w = min(width, max(1, round(math.sqrt(area * height * width * aspect))))
        top = int(torch.randint(0, height - h + 1, (), generator=generator))
        left = int(torch.randint(0, width - w + 1, (), generator=generator))
        view = F.interpolate(image[None, :, top:top + h, left:left + w], size=(height, width), mode="bilinear",
                             align_corners=False)[0]
        views.append(view.flip(-1) if float(torch.rand((), generator=generator)) < 0.5 else view)
    return torch.stack(views)


def text_views(token_ids: torch.Tensor, tokens: TokenizerConfig, generator: torch.Generator) -> torch.Tensor:
    """(B, L) padded ids -> views of the same shape: start, end and padding tokens stay where they belong."""
    special = {tokens.pad_id, tokens.eos_id} | ({tokens.sos_id} if tokens.sos_id is not None else set())
    views = torch.full_like(token_ids, tokens.pad_id)
    for row, ids in enumerate(token_ids.tolist()):
        words = [i for i in ids if i not in special]
        keep = torch.rand(len(words), generator=generator) >= DELETE_SHARE
        if len(words) and not keep.any():
            keep[0] = True  # never an empty caption
        words = [w for w, k in zip(words, keep.tolist(), strict=True) if k]
        if len(words) >= 2:
            a, b = torch.randperm(len(words), generator=generator)[:2].tolist()
            words[a], words[b] = words[b], words[a]
        start = [tokens.sos_id] if tokens.sos_id is not None and ids[0] == tokens.sos_id else []
        view = start + words + [tokens.eos_id]
        views[row, :len(view)] = torch.tensor(view[:token_ids.shape[1]])
    return views
