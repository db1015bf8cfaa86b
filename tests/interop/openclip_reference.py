"""open_clip's own forward, run in the interop environment (`.venv-interop`: torch 2.14.1 with torchvision,
open_clip, timm), never imported by the suite's interpreter. It makes randomly initialised open_clip models in
the layouts users hold (an architecture name and a weights file, or the hub layout of a local folder) and
writes the embeddings open_clip's own preprocessing, tokenizer and forward give for real images and captions.

    python openclip_reference.py make ARCH_OR_CONFIG OUT --images A.jpg … --texts T.json [--tokenizer DIR] [--bin]
    python openclip_reference.py embed local-dir:FOLDER OUT --images … --texts T.json
    python openclip_reference.py timm-shapes NAME …      (each name's shape, as JSON)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file


def embed(model, preprocess, tokenizer, images: list[str], texts: list[str]) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in images])
        tokens = tokenizer(texts)
        return {"image": model.encode_image(pixels, normalize=True), "text": model.encode_text(tokens, normalize=True),
                "tokens": tokens, "pixels": pixels}


def make(args) -> None:
    torch.manual_seed(0)
    name = args.model
    if name.endswith(".json"):
        open_clip.add_model_config(name)
        name = Path(name).stem
    config = open_clip.get_model_config(name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = open_clip.create_model(name, pretrained=None, pretrained_hf=False)  # a hub-named text tower: random
    with torch.no_grad():  # open_clip starts the bias and scale at constants; move them off, to be seen
        model.logit_scale.fill_(3.9)
        if getattr(model, "logit_bias", None) is not None:
            model.logit_bias.fill_(-7.5)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if args.bin:  # an architecture name and a weights file, as open_clip's pretrained .bin files come
        torch.save(state, out / "open_clip_pytorch_model.bin")
        loaded = model
        preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
        tokenizer = open_clip.get_tokenizer(name)
    else:  # the hub layout, loaded back through open_clip's `local-dir:`
        preprocess_cfg = {"mean": [0.5] * 3, "std": [0.5] * 3, "resize_mode": "squash", "interpolation": "bicubic"} \
            if "siglip" in name.lower() else {}
        if args.tokenizer:
            config["text_cfg"]["hf_tokenizer_name"] = "local-tokenizer"
            for f in Path(args.tokenizer).iterdir():
                shutil.copy(f, out / f.name)
        (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess_cfg}))
        save_file(state, str(out / "open_clip_model.safetensors"))
        loaded, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}", pretrained_hf=False)
        tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    save_file(embed(loaded, preprocess, tokenizer, args.images, json.loads(Path(args.texts).read_text())),
              str(out / "reference.safetensors"))


def embed_exported(args) -> None:
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained_hf=False)
    tokenizer = open_clip.get_tokenizer(args.model)
    save_file(embed(model, preprocess, tokenizer, args.images, json.loads(Path(args.texts).read_text())),
              str(Path(args.out) / "reference.safetensors"))


def timm_shapes(names: list[str]) -> None:
    import timm

    shapes = {}
    for name in names:
        with torch.device("meta"):
            m = timm.create_model(name, pretrained=False, num_classes=0)
        block = m.blocks[0]
        shapes[name] = {"width": m.embed_dim, "layers": len(m.blocks), "heads": block.attn.num_heads,
                        "mlp": block.mlp.fc1.out_features, "patch": m.patch_embed.patch_size[0],
                        "image": m.patch_embed.img_size[0], "class_token": m.cls_token is not None,
                        "pre_norm": not isinstance(m.norm_pre, torch.nn.Identity), "pool": m.global_pool,
                        "act": type(block.mlp.act).__name__, "approximate": getattr(block.mlp.act, "approximate", None),
                        "eps": block.norm1.eps}
    print(json.dumps(shapes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["make", "embed", "timm-shapes"])
    parser.add_argument("model", nargs="+")
    parser.add_argument("--out")
    parser.add_argument("--images", nargs="*", default=[])
    parser.add_argument("--texts")
    parser.add_argument("--tokenizer")
    parser.add_argument("--bin", action="store_true")
    args = parser.parse_args()
    if args.action == "timm-shapes":
        return timm_shapes(args.model)
    args.model = args.model[0]
    (make if args.action == "make" else embed_exported)(args)


if __name__ == "__main__":
    main()
