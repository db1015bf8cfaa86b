"""Zero-shot classification metrics against a brute-force reference."""

import pytest
import torch
import torch.nn.functional as F

from components.evaluation.zero_shot import zero_shot_metrics


def brute_zero_shot(images, labels, classes):
    scores = images @ classes.T
    top1 = [int(scores[i].argmax()) == int(labels[i]) for i in range(len(labels))]
    top5 = [int(labels[i]) in scores[i].topk(5).indices.tolist() for i in range(len(labels))]
    per_class = [sum(t for t, lab in zip(top1, labels.tolist(), strict=True) if lab == c) / labels.tolist().count(c)
                 for c in sorted(set(labels.tolist()))]
    return {"zs_top1": sum(top1) / len(top1), "zs_top5": sum(top5) / len(top5),
            "zs_mean_per_class_recall": sum(per_class) / len(per_class)}


def test_zero_shot_metrics_match_brute_force():
    torch.manual_seed(0)
    images, classes = F.normalize(torch.randn(40, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    labels = torch.randint(0, 6, (40,))
    got, expected = zero_shot_metrics(images, labels, classes)[0], brute_zero_shot(images, labels, classes)
    assert got == pytest.approx(expected)
    assert zero_shot_metrics(classes[labels], labels, classes)[0]["zs_top1"] == 1.0
