import random

import pytest
import torch
import torch.nn.functional as F

from components.evaluation.metric_names import prefixed
from components.evaluation.retrieval import RETRIEVAL_METRICS, chance_metrics, retrieval_metrics


def brute_force(image_emb, text_emb, text_to_image, ks=(1, 5, 10)):
    """Full matrix, full sort, membership test (the CLIP_benchmark definition)."""
    scores = image_emb @ text_emb.T
    out = {}
    for k in ks:
        i2t = [bool(set(scores[i].argsort(descending=True)[:k].tolist()) &
                    set((text_to_image == i).nonzero().flatten().tolist())) for i in range(scores.shape[0])]
        t2i = [int(text_to_image[j]) in scores[:, j].argsort(descending=True)[:k].tolist()
               for j in range(scores.shape[1])]
        out[f"i2t_r{k}"], out[f"t2i_r{k}"] = sum(i2t) / len(i2t), sum(t2i) / len(t2i)
    out["mean_recall"] = sum(out.values()) / 6
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("block", [1, 7, 1024])
def test_matches_brute_force_with_several_captions_per_image(seed, block):
    generator = torch.Generator().manual_seed(seed)
    n_images = 37
    per_image = [1 + (i * 7 + seed) % 5 for i in range(n_images)]  # 1 to 5 captions each
    text_to_image = torch.tensor([i for i, n in enumerate(per_image) for _ in range(n)])
    images = F.normalize(torch.randn(n_images, 16, generator=generator), dim=-1)
    texts = F.normalize(images[text_to_image] + 1.2 * torch.randn(len(text_to_image), 16, generator=generator), dim=-1)
    got = retrieval_metrics(images, texts, text_to_image, block=block)
    expected = brute_force(images, texts, text_to_image)
    assert list(got) == list(RETRIEVAL_METRICS)
    assert got == pytest.approx(expected, abs=1e-9)
    assert 0 < got["t2i_r1"] < 1  # the case is neither trivial nor hopeless


def test_perfect_embeddings_score_one():
    images = torch.eye(5)
    assert set(retrieval_metrics(images, images.repeat_interleave(2, 0), torch.arange(5).repeat_interleave(2))
               .values()) == {1.0}


def test_chance_matches_random_rankings():
    text_to_image = torch.arange(20).repeat_interleave(3)
    chance = chance_metrics(text_to_image, 20)
    rng = random.Random(0)
    trials = [retrieval_metrics(*(F.normalize(torch.tensor([[rng.gauss(0, 1) for _ in range(32)] for _ in range(n)]),
                                              dim=-1) for n in (20, 60)), text_to_image) for _ in range(200)]
    for name in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"):
        assert sum(t[name] for t in trials) / len(trials) == pytest.approx(chance[name], abs=0.02), name
    assert chance["t2i_r1"] == pytest.approx(1 / 20)


def test_metric_names_are_prefixed_by_eval_set():
    assert prefixed({"t2i_r1": 0.5}, "coco_val") == {"coco_val/t2i_r1": 0.5}


def test_caption_without_image_is_refused():
    with pytest.raises(ValueError, match="image index for every caption"):
        retrieval_metrics(torch.eye(2), torch.eye(3), torch.tensor([0, 1, 2]))
