import math

import torch
import torch.nn.functional as F

from components.objectives import clip_loss
from components.objectives.clip_loss import ClipLoss


def reference_clip_loss(images, texts, scale):
    """Per-sample loops: -log softmax of the matching pair, averaged over both directions."""
    n, total = images.shape[0], 0.0
    for i in range(n):
        row = [scale * float(images[i] @ texts[j]) for j in range(n)]
        col = [scale * float(texts[i] @ images[j]) for j in range(n)]
        total += -(row[i] - math.log(sum(math.exp(v) for v in row)))
        total += -(col[i] - math.log(sum(math.exp(v) for v in col)))
    return total / (2 * n)


def test_matches_reference():
    torch.manual_seed(0)
    images, texts = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    loss = ClipLoss()(images, texts, torch.tensor(10.0))
    assert abs(loss.item() - reference_clip_loss(images, texts, 10.0)) < 1e-5


def test_two_ranks_local_loss_averages_to_the_global_loss(monkeypatch):
    """Each rank's local loss over the gathered batch; their mean equals the single-process loss."""
    torch.manual_seed(0)
    images, texts = F.normalize(torch.randn(8, 4), dim=-1), F.normalize(torch.randn(8, 4), dim=-1)
    scale = torch.tensor(5.0)

    def gather(local: torch.Tensor) -> torch.Tensor:  # what all-gather returns: the global batch, in rank order
        is_image = any(local.data_ptr() == part.data_ptr() for part in images.split(4))
        return images if is_image else texts

    monkeypatch.setattr(clip_loss, "gather_with_grad", gather)
    losses = [ClipLoss(rank=r, world_size=2)(images[4 * r:4 * r + 4], texts[4 * r:4 * r + 4], scale) for r in (0, 1)]
    torch.testing.assert_close(sum(losses) / 2, ClipLoss()(images, texts, scale))
