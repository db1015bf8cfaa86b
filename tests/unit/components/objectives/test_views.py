"""Second views for in-modality contrast: shapes kept, special tokens in place, the same seed the same views."""

import torch

from components.config import preset
from components.objectives.views import image_views, text_views


def captions(config, lengths):
    tokens = torch.full((len(lengths), config.context_length), config.pad_id)
    for row, length in enumerate(lengths):
        tokens[row, 0] = config.sos_id
        tokens[row, 1:length + 1] = torch.arange(10, 10 + length)
        tokens[row, length + 1] = config.eos_id
    return tokens


def test_text_views_keep_the_frame_and_draw_from_the_caption():
    config = preset("tiny").tokenizer
    tokens = captions(config, [1, 2, 8, 20])
    views = text_views(tokens, config, torch.Generator().manual_seed(0))
    assert views.shape == tokens.shape and (views[:, 0] == config.sos_id).all()
    for original, view in zip(tokens.tolist(), views.tolist(), strict=True):
        words = [t for t in view if t not in (config.pad_id, config.sos_id, config.eos_id)]
        assert 1 <= len(words) and set(words) <= set(original)  # deleted or swapped, never invented
        assert view[len(words) + 1] == config.eos_id and set(view[len(words) + 2:]) <= {config.pad_id}
    assert views[0].equal(tokens[0])  # one word: nothing to delete or swap
    assert text_views(tokens, config, torch.Generator().manual_seed(0)).equal(views)
    assert not text_views(tokens, config, torch.Generator().manual_seed(1)).equal(views)


def test_image_views_are_crops_of_the_image_resized_back():
    pixels = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    views = image_views(pixels, torch.Generator().manual_seed(0))
    assert views.shape == pixels.shape and not views.equal(pixels)
    assert views.min() >= pixels.min() and views.max() <= pixels.max()  # interpolated inside the image
    assert image_views(pixels, torch.Generator().manual_seed(0)).equal(views)
