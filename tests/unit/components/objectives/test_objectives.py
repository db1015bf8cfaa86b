"""Every objective against a straightforward reference computation (per-pair loops), and the properties
that make each one what it claims to be."""

import math

import pytest
import torch
import torch.nn.functional as F

from components.config import preset
from components.models.artifact import ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.objectives import OBJECTIVES, Batch, Outputs, Views, WeightedObjectives, build_objective
from components.objectives import cleanclip as cleanclip_module
from components.objectives import clip as clip_module
from components.objectives import identity as identity_module
from components.objectives import siglip as siglip_module
from components.objectives.distill import similarity_kl
from components.objectives.frozen import renormalise
from components.objectives.matching import sample_negatives


def unit(*shape):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


def outputs(images, texts, scale=10.0, bias=None, image_tokens=None, text_tokens=None, step=0):
    bias = None if bias is None else torch.tensor(bias, dtype=images.dtype)
    return Outputs(images, texts, torch.tensor(scale, dtype=images.dtype), bias, image_tokens, text_tokens, step)


def batch(n, groups=None, persons=None, tokens=None):
    return Batch(torch.zeros(n, 3, 2, 2), tokens if tokens is not None else torch.zeros(n, 4, dtype=torch.long),
                 torch.arange(n) if groups is None else torch.tensor(groups),
                 None if persons is None else torch.tensor(persons), [f"caption {i}" for i in range(n)])


def reference_clip(images, texts, scale):
    n, total = len(images), 0.0
    for i in range(n):
        row = [scale * float(images[i] @ texts[j]) for j in range(n)]
        col = [scale * float(texts[i] @ images[j]) for j in range(n)]
        total += -(row[i] - math.log(sum(math.exp(v) for v in row)))
        total += -(col[i] - math.log(sum(math.exp(v) for v in col)))
    return total / (2 * n)


def reference_siglip(images, texts, scale, bias):
    n, total = len(images), 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            total += math.log1p(math.exp(-z * (scale * float(images[i] @ texts[j]) + bias)))
    return total / n


def reference_identity(images, texts, scale, persons):
    n, total = len(images), 0.0
    for a, b in ((images, texts), (texts, images)):
        for i in range(n):
            logits = [scale * float(a[i] @ b[j]) for j in range(n)]
            log_z = math.log(sum(math.exp(v) for v in logits))
            positives = [j for j in range(n) if persons[j] == persons[i]]
            total += -sum(logits[j] - log_z for j in positives) / len(positives)
    return total / (2 * n)


def test_every_registered_objective_is_tested():
    assert set(OBJECTIVES) == {"clip", "siglip", "caption", "matching", "identity", "distill", "bct", "cleanclip",
                               "momentum", "modx"}  # the last two: test_continual_objectives.py


def test_clip_matches_reference():
    torch.manual_seed(0)
    images, texts = unit(6, 8), unit(6, 8)
    loss = build_objective("clip", {}, 0, 1)(batch(6), outputs(images, texts))
    assert loss.item() == pytest.approx(reference_clip(images, texts, 10.0), abs=1e-10)


def test_siglip_matches_reference():
    torch.manual_seed(0)
    images, texts = unit(6, 8), unit(6, 8)
    loss = build_objective("siglip", {}, 0, 1)(batch(6), outputs(images, texts, 10.0, -3.0))
    assert loss.item() == pytest.approx(reference_siglip(images, texts, 10.0, -3.0), abs=1e-10)


def test_siglip_without_a_bias_says_what_to_configure():
    with pytest.raises(ValueError, match="init_logit_bias"):
        build_objective("siglip", {}, 0, 1)(batch(2), outputs(unit(2, 4), unit(2, 4)))


def test_identity_matches_reference_and_reduces_to_clip_with_distinct_people():
    torch.manual_seed(0)
    images, texts, persons = unit(6, 8), unit(6, 8), [7, 7, 3, 5, 3, 9]
    identity = build_objective("identity", {}, 0, 1)
    loss = identity(batch(6, persons=persons), outputs(images, texts))
    assert loss.item() == pytest.approx(reference_identity(images, texts, 10.0, persons), abs=1e-10)
    distinct = identity(batch(6, persons=list(range(6))), outputs(images, texts))
    assert distinct.item() == pytest.approx(reference_clip(images, texts, 10.0), abs=1e-10)
    with pytest.raises(ValueError, match="person_id"):
        identity(batch(6), outputs(images, texts))


def reference_cleanclip(images, texts, image_views, text_views, scale):
    """CleanCLIP's `get_loss` with `inmodal` (clip_weight = inmodal_weight = 1), written out from its code."""
    target = torch.arange(len(images))
    logits_text_per_image = scale * images @ texts.T
    logits_image_per_augmented_image = scale * images @ image_views.T
    logits_text_per_augmented_text = scale * texts @ text_views.T
    crossmodal = (F.cross_entropy(logits_text_per_image, target) + F.cross_entropy(logits_text_per_image.T, target)) / 2
    inmodal = (F.cross_entropy(logits_image_per_augmented_image, target)
               + F.cross_entropy(logits_text_per_augmented_text, target)) / 2
    return (crossmodal + inmodal).item()


def test_cleanclip_at_its_defaults_is_the_reference_loss_and_needs_views():
    torch.manual_seed(0)
    images, texts, image_views, text_views = unit(6, 8), unit(6, 8), unit(6, 8), unit(6, 8)
    with_views = outputs(images, texts)
    with_views.views = Views(image_views, text_views)
    objective = build_objective("cleanclip", {}, 0, 1)
    expected = reference_cleanclip(images, texts, image_views, text_views, 10.0)
    assert objective.needs_views and objective(batch(6), with_views).item() == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="needs second views"):
        objective(batch(6), outputs(images, texts))


def test_cleanclip_weightings_other_than_the_reference_are_named_options():
    torch.manual_seed(0)
    images, texts, image_views, text_views = unit(6, 8), unit(6, 8), unit(6, 8), unit(6, 8)
    with_views = outputs(images, texts)
    with_views.views = Views(image_views, text_views)
    summed = build_objective("cleanclip", {"in_modality": "symmetric_sum", "self_weight": 0.5}, 0, 1)
    expected = reference_clip(images, texts, 10.0) + 0.5 * (reference_clip(images, image_views, 10.0)
                                                            + reference_clip(texts, text_views, 10.0))
    assert summed(batch(6), with_views).item() == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="in_modality"):
        build_objective("cleanclip", {"in_modality": "both"}, 0, 1)


@pytest.mark.parametrize("name,module,extra", [("clip", clip_module, {}), ("siglip", siglip_module, {"bias": -2.0}),
                                               ("identity", identity_module, {}), ("cleanclip", cleanclip_module, {})])
def test_two_ranks_of_local_losses_average_to_the_global_loss(monkeypatch, name, module, extra):
    """With the gathers standing in for the collectives, the mean of the ranks' losses is the full-batch loss."""
    torch.manual_seed(0)
    images, texts, persons = unit(8, 4), unit(8, 4), torch.tensor([1, 2, 1, 3, 4, 2, 5, 3])
    full = {id(t): t for t in (images, texts, persons)}
    parts = {p.data_ptr(): whole for whole in (images, texts, persons) for p in whole.split(4)}

    def gather(local, world_size):
        return full.get(id(local), parts[local.data_ptr()])

    monkeypatch.setattr(module, "gather_with_grad", gather)
    if hasattr(module, "gather_constant"):
        monkeypatch.setattr(module, "gather_constant", gather)

    def seen(rows: slice) -> Outputs:
        out = outputs(images[rows], texts[rows], 5.0, extra.get("bias"))
        out.views = Views(texts[rows], images[rows])  # any second views; their rank slices are gathered too
        return out

    losses = [build_objective(name, {}, r, 2)(Batch(None, None, None, persons[4 * r:4 * r + 4]),
                                              seen(slice(4 * r, 4 * r + 4))) for r in (0, 1)]
    single = build_objective(name, {}, 0, 1)(Batch(None, None, None, persons), seen(slice(None)))
    assert (sum(losses) / 2).item() == pytest.approx(single.item(), abs=1e-12)


def tiny_model():
    torch.manual_seed(0)
    config = preset("tiny")
    return DualEncoder(config).double(), config


def tokens_with_eos(config, n, eos_at):
    tokens = torch.randint(4, config.tokenizer.vocab_size, (n, config.tokenizer.context_length))
    tokens[:, 0] = config.tokenizer.sos_id
    for row, position in enumerate(eos_at):
        tokens[row, position] = config.tokenizer.eos_id
        tokens[row, position + 1:] = config.tokenizer.pad_id
    return tokens


def encode(model, tokens, pixels):
    encoded = model(pixels, tokens)
    return outputs(encoded.image_emb, encoded.text_emb, 10.0, None, encoded.image_tokens, encoded.text_tokens)


def test_caption_loss_matches_reference_and_stops_at_eos():
    model, config = tiny_model()
    tokens = tokens_with_eos(config, 3, [5, 9, 31])
    pixels = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    objective = build_objective("caption", {}, 0, 1, model_config=config).double()
    out = encode(model, tokens, pixels)
    loss = objective(batch(3, tokens=tokens), out)
    logits = objective.decoder(out.text_tokens[:, :-1], out.image_tokens).log_softmax(-1)
    terms = [-float(logits[r, t, tokens[r, t + 1]].detach()) for r, eos in enumerate([5, 9, 31]) for t in range(eos)]
    assert loss.item() == pytest.approx(sum(terms) / len(terms), abs=1e-10)  # predicts up to and including EOS


def test_caption_decoder_is_causal():
    """A prediction never sees the token it predicts or any later one (text tower and decoder both causal)."""
    model, config = tiny_model()
    tokens = tokens_with_eos(config, 1, [20])
    pixels = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    objective = build_objective("caption", {}, 0, 1, model_config=config).double()
    changed = tokens.clone()
    changed[0, 10:] = 7
    before, after = (objective.decoder(encode(model, t, pixels).text_tokens, encode(model, t, pixels).image_tokens)
                     for t in (tokens, changed))
    torch.testing.assert_close(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_caption_needs_a_causal_text_tower():
    config = preset("tiny")
    config.text.kind = "bert"
    with pytest.raises(ValueError, match="causal"):
        build_objective("caption", {}, 0, 1, model_config=config)


def test_hard_negatives_exclude_positives_and_prefer_hard_ones():
    similarity = torch.tensor([[9.0, 8.0, 0.0, -5.0], [8.0, 9.0, 7.0, 0.0], [0.0, 1.0, 9.0, 30.0],
                               [0.0, 0.0, 0.0, 9.0]])
    same = torch.tensor([0, 0, 1, 2])[:, None] == torch.tensor([0, 0, 1, 2])[None, :]  # 0 and 1: one image
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_negatives(similarity, same, generator) for _ in range(400)])
    assert not same.gather(1, draws.T).any()  # never a caption of the same image
    assert (draws[:, 2] == 3).float().mean() == 1.0  # overwhelmingly the hardest
    assert (draws[:, 1] == 2).float().mean() > 0.99
    uniform = torch.stack([sample_negatives(similarity, same, generator, hard=False) for _ in range(400)])
    assert 0.35 < (uniform[:, 0] == 2).float().mean() < 0.65


def test_matching_loss_matches_reference_pairs():
    model, config = tiny_model()
    tokens = tokens_with_eos(config, 4, [5, 6, 7, 8])
    pixels = torch.randn(4, 3, 64, 64, dtype=torch.float64)
    objective = build_objective("matching", {"seed": 3}, 0, 1, model_config=config).double()
    out, b = encode(model, tokens, pixels), batch(4, groups=[0, 1, 2, 3], tokens=tokens)
    loss = objective(b, out)
    negative_texts, negative_images = objective.negatives(b, out)  # seeded by (seed, step, rank): same draw
    pairs = ([(i, i, 1) for i in range(4)] + [(int(negative_texts[i]), i, 0) for i in range(4)]
             + [(t, int(negative_images[t]), 0) for t in range(4)])
    total = 0.0
    for text, image, label in pairs:
        padding = torch.arange(config.tokenizer.context_length)[None] > [5, 6, 7, 8][text]
        logits = objective.head(out.text_tokens[text:text + 1], padding, out.image_tokens[image:image + 1])
        total += -float(logits.log_softmax(-1)[0, label])
    assert loss.item() == pytest.approx(total / 12, abs=1e-9)


def test_matching_with_one_image_in_the_batch_explains():
    model, config = tiny_model()
    tokens = tokens_with_eos(config, 2, [5, 6])
    objective = build_objective("matching", {}, 0, 1, model_config=config).double()
    with pytest.raises(ValueError, match="no negative"):
        objective(batch(2, groups=[4, 4], tokens=tokens), encode(model, tokens, torch.randn(2, 3, 64, 64,
                                                                                             dtype=torch.float64)))


def test_distillation_kl_matches_reference():
    torch.manual_seed(0)
    teacher, student = torch.randn(4, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    expected = 0.0
    for row_t, row_s in zip(teacher / 2, student / 2, strict=True):
        p, q = row_t.softmax(0), row_s.softmax(0)
        expected += float((p * (p / q).log()).sum())
    assert similarity_kl(teacher, student, 2.0).item() == pytest.approx(expected / 4 * 4, abs=1e-10)


def test_distilling_from_itself_costs_nothing_and_from_another_model_something(tiny_artifact, tmp_path):
    artifact = ModelArtifact.load(tiny_artifact)
    config = artifact.config
    pixels = torch.randn(4, 3, 64, 64)
    captions = ["a red circle", "two blue squares", "a green triangle left", "one yellow star"]
    tokens = artifact.tokenizer(captions)
    b = Batch(pixels, tokens, torch.arange(4), None, captions)
    distill = build_objective("distill", {"teacher": str(tiny_artifact)}, 0, 1, model_config=config)
    with torch.no_grad():
        encoded = artifact.model(pixels, tokens)
    same = Outputs(encoded.image_emb, encoded.text_emb, artifact.model.logit_scale.exp(), None,
                   encoded.image_tokens, encoded.text_tokens)
    assert distill(b, same).item() == pytest.approx(0.0, abs=1e-6)
    other = Outputs(encoded.image_emb.roll(1, 0), encoded.text_emb, same.logit_scale, None, None, None)
    assert distill(b, other).item() > 1e-3
    assert not any(n.startswith("teacher") for n, _ in distill.named_parameters())  # not trained, not saved


def test_renormalise_maps_between_preprocessings():
    source, target = preset("tiny"), preset("tiny")
    target.image_mean, target.image_std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    raw = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    mean, std = (torch.tensor(v, dtype=torch.float64)[:, None, None] for v in (source.image_mean, source.image_std))
    torch.testing.assert_close(renormalise((raw - mean) / std, source, target), (raw - 0.5) / 0.5)
    assert renormalise(raw, source, source) is raw


def test_weighted_objectives_sum_their_parts():
    torch.manual_seed(0)
    images, texts = unit(4, 8), unit(4, 8)
    parts = {"clip": build_objective("clip", {}, 0, 1), "siglip": build_objective("siglip", {}, 0, 1)}
    total, losses = WeightedObjectives(parts, {"clip": 1.0, "siglip": 0.5})(batch(4), outputs(images, texts, 10.0,
                                                                                                -1.0))
    assert total.item() == pytest.approx(losses["clip"].item() + 0.5 * losses["siglip"].item(), abs=1e-12)


def test_unknown_objectives_and_options_are_named():
    with pytest.raises(ValueError, match="unknown objective 'clipp'.*'clip'"):
        build_objective("clipp", {}, 0, 1)
    with pytest.raises(ValueError, match=r"no option\(s\) \['temprature'\].*'temperature'"):
        build_objective("distill", {"temprature": 2.0, "teacher": "x"}, 0, 1, model_config=preset("tiny"))


class FixedOldModel:
    """The old model of a compatible upgrade, as fixed embeddings of the global batch."""

    def __init__(self, images, texts, scale):
        self.images, self.texts, self.scale = images, texts, torch.tensor(scale, dtype=images.dtype)

    def embed(self, batch, world_size):
        return self.images, self.texts

    def logit_scale(self):
        return self.scale


def reference_bct(new_images, new_texts, old_images, old_texts, scale):
    """Per-pair InfoNCE of new texts against old images and new images against old texts."""
    n, total = len(new_images), 0.0
    for queries, keys in ((new_texts, old_images), (new_images, old_texts)):
        for i in range(n):
            logits = torch.stack([scale * (queries[i] @ keys[j]) for j in range(n)])
            total = total - (logits[i] - torch.logsumexp(logits, 0))
    return total / (2 * n)


def bct_objective(tiny_artifact, rank=0, world_size=1):
    return build_objective("bct", {"old": str(tiny_artifact)}, rank, world_size,
                           model_config=ModelArtifact.load(tiny_artifact).config)


def test_bct_matches_reference_in_loss_and_gradients(tiny_artifact):
    torch.manual_seed(0)
    old_images, old_texts = unit(6, 8), unit(6, 8)
    new_images, new_texts = unit(6, 8).requires_grad_(), unit(6, 8).requires_grad_()
    objective = bct_objective(tiny_artifact)
    objective.old = FixedOldModel(old_images, old_texts, 7.0)
    loss = objective(batch(6), outputs(new_images, new_texts, scale=99.0))  # the new scale plays no part
    grads = torch.autograd.grad(loss, (new_images, new_texts))
    expected = reference_bct(new_images, new_texts, old_images, old_texts, 7.0)
    expected_grads = torch.autograd.grad(expected, (new_images, new_texts))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-10)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_bct_over_two_ranks_averages_to_the_global_loss(tiny_artifact):
    torch.manual_seed(0)
    old = FixedOldModel(unit(8, 4), unit(8, 4), 5.0)
    new_images, new_texts = unit(8, 4), unit(8, 4)
    single = bct_objective(tiny_artifact)
    single.old = old
    ranks = [bct_objective(tiny_artifact, r, 2) for r in (0, 1)]
    for objective in ranks:
        objective.old = old
    local = [o(batch(4), outputs(new_images[4 * r:4 * r + 4], new_texts[4 * r:4 * r + 4])) for r, o in enumerate(ranks)]
    assert ((local[0] + local[1]) / 2).item() == pytest.approx(single(batch(8), outputs(new_images, new_texts)).item(),
                                                               abs=1e-10)


@pytest.mark.parametrize("name", ["bct", "modx"])  # a compatible upgrade's old model; Mod-X's previous phase
def test_against_the_same_model_is_its_clip_loss_and_leaves_the_old_model_out(name, tiny_artifact):
    artifact = ModelArtifact.load(tiny_artifact)
    captions = ["a red circle", "two blue squares", "a green triangle left", "one yellow star"]
    pixels, tokens = torch.randn(4, 3, 64, 64), artifact.tokenizer(captions)
    with torch.no_grad():
        encoded = artifact.model(pixels, tokens)
    scale = artifact.model.logit_scale.exp()
    objective = build_objective(name, {"old": str(tiny_artifact)}, 0, 1, model_config=artifact.config)
    loss = objective(Batch(pixels, tokens, torch.arange(4), None, captions),
                     Outputs(encoded.image_emb, encoded.text_emb, scale, None, None, None))
    assert loss.item() == pytest.approx(reference_clip(encoded.image_emb.double(), encoded.text_emb.double(),
                                                       float(scale)), abs=1e-5)
    assert list(objective.named_parameters()) == []  # the old model is neither trained nor saved


def test_bct_between_spaces_of_different_sizes_points_to_the_projection(tiny_artifact):
    config = ModelArtifact.load(tiny_artifact).config.model_copy(deep=True)
    config.embed_dim += 8
    with pytest.raises(ValueError, match="fit a projection"):
        build_objective("bct", {"old": str(tiny_artifact)}, 0, 1, model_config=config)
