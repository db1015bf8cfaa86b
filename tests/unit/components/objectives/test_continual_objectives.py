"""The objectives with state made for a sequence of updates: ALBEF's momentum distillation and Mod-X, each
against its reference code's formula (loss and gradients), and their state's lifecycle."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from components.config import ModelSection, OptimSection, preset
from components.models.artifact import ModelArtifact
from components.objectives import Batch, Outputs, build_objective
from components.training.module import ContrastivePretraining


def unit(*shape):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


def batch(n):
    return Batch(torch.zeros(n, 3, 2, 2), torch.zeros(n, 4, dtype=torch.long), torch.arange(n), None,
                 [f"caption {i}" for i in range(n)])


class Fixed(nn.Module):
    """A momentum model that embeds every batch as the given features."""

    def __init__(self, images, texts):
        super().__init__()
        self.images, self.texts = images, texts

    def forward(self, pixels, token_ids):
        return SimpleNamespace(image_emb=self.images, text_emb=self.texts)


def reference_albef(image_feat, text_feat, image_feat_m, text_feat_m, image_queue, text_queue, temp, alpha):
    """`salesforce/ALBEF` `models/model_pretrain.py`, its ITC loss, line for line (queues stored (dim, size))."""
    with torch.no_grad():
        image_feat_all = torch.cat([image_feat_m.t(), image_queue.clone().detach()], dim=1)
        text_feat_all = torch.cat([text_feat_m.t(), text_queue.clone().detach()], dim=1)
        sim_i2t_m = image_feat_m @ text_feat_all / temp.detach()
        sim_t2i_m = text_feat_m @ image_feat_all / temp.detach()
        sim_targets = torch.zeros(sim_i2t_m.size(), dtype=sim_i2t_m.dtype)
        sim_targets.fill_diagonal_(1)
        sim_i2t_targets = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * sim_targets
        sim_t2i_targets = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * sim_targets
    sim_i2t = image_feat @ text_feat_all / temp
    sim_t2i = text_feat @ image_feat_all / temp
    loss_i2t = -torch.sum(F.log_softmax(sim_i2t, dim=1) * sim_i2t_targets, dim=1).mean()
    loss_t2i = -torch.sum(F.log_softmax(sim_t2i, dim=1) * sim_t2i_targets, dim=1).mean()
    return (loss_i2t + loss_t2i) / 2


def momentum_objective(queue_size=16, **options):
    objective = build_objective("momentum", {"queue_size": queue_size, **options}, 0, 1,
                                model_config=preset("tiny").model_copy(update={"embed_dim": 8}))
    return objective.double()


@pytest.mark.parametrize("epochs,alpha", [(0.25, 0.1), (3.0, 0.4)])  # ramped over the first epoch, then 0.4
def test_momentum_matches_albef_in_loss_and_gradients(epochs, alpha):
    torch.manual_seed(0)
    images, texts = unit(6, 8).requires_grad_(), unit(6, 8).requires_grad_()
    scale = torch.tensor(14.0, dtype=torch.float64, requires_grad=True)
    momentum_images, momentum_texts, queued_images, queued_texts = unit(6, 8), unit(6, 8), unit(10, 8), unit(10, 8)
    objective = momentum_objective()
    objective.ema = Fixed(momentum_images, momentum_texts)
    objective.enqueue(queued_images, queued_texts)
    loss = objective(batch(6), Outputs(images, texts, scale, None, None, None, epochs=epochs))
    expected = reference_albef(images, texts, momentum_images, momentum_texts, queued_images.T, queued_texts.T,
                               1 / scale, alpha)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    for got, want in zip(torch.autograd.grad(loss, (images, texts, scale)),
                         torch.autograd.grad(expected, (images, texts, scale)), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_momentum_enqueues_training_batches_only_and_wraps_the_ring():
    torch.manual_seed(0)
    objective = momentum_objective(queue_size=10)
    first, second = (unit(6, 8), unit(6, 8)), (unit(6, 8), unit(6, 8))
    for momentum in (first, second):
        objective.ema = Fixed(*momentum)
        objective(batch(6), Outputs(unit(6, 8), unit(6, 8), torch.tensor(10.0), None, None, None))
    assert int(objective.queue_filled) == 10 and int(objective.queue_next) == 2
    # slots 0-1 were overwritten by the second batch's last two rows; 2-5 still hold the first's 2-5
    torch.testing.assert_close(objective.image_queue[:2], second[0][4:])
    torch.testing.assert_close(objective.image_queue[2:6], first[0][2:6])
    torch.testing.assert_close(objective.text_queue[6:10], second[1][:4])
    objective.eval()  # validation: its batches are never negatives
    objective.ema = Fixed(unit(6, 8), unit(6, 8))
    before = objective.image_queue.clone()
    objective(batch(6), Outputs(unit(6, 8), unit(6, 8), torch.tensor(10.0), None, None, None))
    assert torch.equal(objective.image_queue, before) and int(objective.queue_next) == 2


def test_momentum_copy_moves_by_the_moving_average_after_each_step():
    model = nn.Linear(3, 2)
    objective = momentum_objective(momentum=0.9)
    objective.bind(model)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    objective.after_step(model)
    torch.testing.assert_close(objective.ema.weight, 0.9 * start + 0.1 * (start + 1.0))
    assert not objective.ema.weight.requires_grad


def test_momentum_state_is_checkpointed_and_never_exported(tiny_artifact):
    """Bound to the starting weights (the artifact finetuned from), kept in the module's state dict (hence in
    every checkpoint), and left out of the model the run exports."""
    config = ModelArtifact.load_light(tiny_artifact).config
    module = ContrastivePretraining(config, OptimSection(objectives=[{"name": "momentum",
                                                                      "options": {"queue_size": 32}}]),
                                    ModelSection(init_from=str(tiny_artifact)))
    start = load_file(str(tiny_artifact / "model.safetensors"))
    copy = module.objectives.parts["momentum"].ema.state_dict()
    assert copy.keys() == start.keys() and all(torch.equal(copy[k], start[k]) for k in start)
    state = module.state_dict()
    assert {"objectives.parts.momentum.image_queue", "objectives.parts.momentum.queue_next"} <= state.keys()
    assert {k.removeprefix("model.") for k in state if k.startswith("model.")} == start.keys()
    assert not any(p.requires_grad for p in module.objectives.parameters())


def reference_modx(image_features, text_features, image_features_old, text_features_old, logit_scale, alpha):
    """`ZixuanNi/Mod-X` `ModX_Training/continue_train_model.py`, its loss, line for line."""
    def cognition_align(old, new):
        n, m = old.shape
        index = torch.max(old, 1)[1]
        for i in range(n):
            if index[i] != i:
                old[i] = new[i]
        return old, new

    per_image = image_features @ text_features.t()
    per_text = text_features @ image_features.t()
    img_text_old = image_features_old @ text_features_old.t()
    text_img_old = text_features_old @ image_features_old.t()
    logits_img_text_old, logits_per_image = cognition_align(img_text_old, per_image)
    logits_text_img_old, logits_per_text = cognition_align(text_img_old, per_text)
    labels = torch.arange(len(logits_per_image))
    loss_dia_img = F.kl_div(logits_per_image.softmax(dim=-1).log(), logits_img_text_old.softmax(dim=-1),
                            reduction="sum")
    loss_dia_text = F.kl_div(logits_per_text.softmax(dim=-1).log(), logits_text_img_old.softmax(dim=-1),
                             reduction="sum")
    image_loss = F.cross_entropy(logit_scale * logits_per_image, labels)
    text_loss = F.cross_entropy(logit_scale * logits_per_text, labels)
    return (image_loss + text_loss) / 2 + alpha * (loss_dia_img + loss_dia_text) / 2


class FixedOld:
    def __init__(self, images, texts):
        self.images, self.texts = images, texts

    def embed(self, batch, world_size):
        return self.images, self.texts


def modx_objective(tiny_artifact, **options):
    return build_objective("modx", {"old": str(tiny_artifact), **options}, 0, 1,
                           model_config=ModelArtifact.load_light(tiny_artifact).config)


def test_modx_matches_the_reference_in_loss_and_gradients(tiny_artifact):
    torch.manual_seed(0)
    images, texts = unit(8, 6).requires_grad_(), unit(8, 6).requires_grad_()
    scale = torch.tensor(12.0, dtype=torch.float64, requires_grad=True)
    old_images = unit(8, 6)
    old_texts = F.normalize(old_images + 0.8 * torch.randn(8, 6, dtype=torch.float64), dim=-1)
    wrong = ((old_images @ old_texts.T).argmax(dim=1) != torch.arange(8)).sum()
    assert 0 < wrong < 8  # some rows the old model gets right, some it does not: both paths are exercised
    objective = modx_objective(tiny_artifact, alpha=3.0)
    objective.old = FixedOld(old_images, old_texts)
    loss = objective(batch(8), Outputs(images, texts, scale, None, None, None))
    expected = reference_modx(images, texts, old_images, old_texts, scale, 3.0)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    for got, want in zip(torch.autograd.grad(loss, (images, texts, scale)),
                         torch.autograd.grad(expected, (images, texts, scale)), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_modx_over_two_ranks_averages_to_the_global_loss(tiny_artifact, monkeypatch):
    """Each rank's rows against the gathered batch, its KL share scaled by the world size: the mean of the ranks'
    losses is the one-process loss (the gathers stand in for the collectives; tests/integration/test_distributed.py
    runs real gloo ranks for the same contract)."""
    from components.objectives import modx as modx_module

    torch.manual_seed(0)
    images, texts, old_images = unit(8, 6), unit(8, 6), unit(8, 6)
    old_texts = F.normalize(old_images + 0.8 * torch.randn(8, 6, dtype=torch.float64), dim=-1)
    whole = {p.data_ptr(): t for t in (images, texts) for p in t.split(4)}
    monkeypatch.setattr(modx_module, "gather_with_grad", lambda x, world_size: whole.get(x.data_ptr(), x))
    losses = []
    for rank, world_size, rows in ((0, 2, slice(0, 4)), (1, 2, slice(4, 8)), (0, 1, slice(None))):
        objective = build_objective("modx", {"old": str(tiny_artifact), "alpha": 3.0}, rank, world_size,
                                    model_config=ModelArtifact.load_light(tiny_artifact).config)
        objective.old = FixedOld(old_images, old_texts)
        losses.append(objective(batch(8), Outputs(images[rows], texts[rows], torch.tensor(12.0), None, None, None)))
    assert ((losses[0] + losses[1]) / 2).item() == pytest.approx(losses[2].item(), abs=1e-12)


@pytest.mark.parametrize("options", [{"queue_size": 10**12}, {"momentum": float("nan")}, {"alpha": 1.5}])
def test_momentum_settings_out_of_range_are_refused_before_anything_is_allocated(options):
    with pytest.raises(ValueError, match="queue_size <= 1,048,576"):
        build_objective("momentum", options, 0, 1, model_config=preset("tiny"))


@pytest.mark.parametrize("alpha", [float("nan"), -1.0, float("inf")])
def test_modx_refuses_an_alpha_that_is_no_weight(alpha, tiny_artifact):
    with pytest.raises(ValueError, match="finite alpha >= 0"):
        modx_objective(tiny_artifact, alpha=alpha)
