"""Person-search metrics (R@k, mAP, mINP) against a brute-force reference."""

import pytest
import torch
import torch.nn.functional as F

from components.evaluation.person import person_search_metrics


def brute_person(text, text_ids, images, image_ids):
    totals = {"t2i_r1": 0, "t2i_r5": 0, "t2i_r10": 0, "map": 0.0, "minp": 0.0}
    for q in range(len(text)):
        order = sorted(range(len(images)), key=lambda j: -float(text[q] @ images[j]))
        relevant = [int(image_ids[j] == text_ids[q]) for j in order]
        positions = [i + 1 for i, r in enumerate(relevant) if r]
        for k in (1, 5, 10):
            totals[f"t2i_r{k}"] += positions[0] <= k
        totals["map"] += sum((n + 1) / p for n, p in enumerate(positions)) / len(positions)
        totals["minp"] += len(positions) / positions[-1]
    return {k: v / len(text) for k, v in totals.items()}


def test_person_search_metrics_match_brute_force_including_map_and_minp():
    torch.manual_seed(0)
    images, image_ids = F.normalize(torch.randn(30, 8), dim=-1), torch.randint(0, 8, (30,))
    text, text_ids = F.normalize(torch.randn(25, 8), dim=-1), image_ids[torch.randint(0, 30, (25,))]
    got = person_search_metrics(text, text_ids, images, image_ids, block=7)[0]
    assert got == pytest.approx(brute_person(text, text_ids, images, image_ids))
    perfect = person_search_metrics(images, image_ids, images, image_ids)[0]
    assert perfect["t2i_r1"] == 1.0 and 0 < perfect["minp"] <= 1.0
