"""Chunked retrieval metrics against the dense N x N baseline: time and peak memory, side by side.

Each variant runs in its own subprocess so peak RSS (ru_maxrss) belongs to it alone.
Usage: python -m benchmarks.retrieval_eval [--images 4000] [--captions-per-image 5] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def dense_metrics(image_emb, text_emb, text_to_image):
    """The straightforward baseline: the whole similarity matrix, then ranks from it."""
    scores = image_emb @ text_emb.T  # I x T, all at once
    positive = text_to_image[None, :] == torch.arange(image_emb.shape[0])[:, None]
    best = scores.masked_fill(~positive, float("-inf")).max(dim=1).values
    i2t = (scores > best[:, None]).sum(1)
    t2i = (scores.T > scores.T[torch.arange(text_emb.shape[0]), text_to_image][:, None]).sum(1)
    return {f"{n}_r{k}": (r < k).double().mean().item() for n, r in (("i2t", i2t), ("t2i", t2i)) for k in (1, 5, 10)}


def run_variant(variant: str, images: int, per_image: int, dim: int) -> dict:
    from components.evaluation.retrieval import retrieval_metrics

    generator = torch.Generator().manual_seed(0)
    text_to_image = torch.arange(images).repeat_interleave(per_image)
    image_emb = F.normalize(torch.randn(images, dim, generator=generator), dim=-1)
    text_emb = F.normalize(image_emb[text_to_image] + torch.randn(len(text_to_image), dim, generator=generator), dim=-1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    metrics = (dense_metrics if variant == "dense" else retrieval_metrics)(image_emb, text_emb, text_to_image)
    seconds = time.perf_counter() - started
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"variant": variant, "seconds": seconds, "extra_peak_mb": peak_mb,
            "t2i_r1": metrics["t2i_r1"], "i2t_r1": metrics["i2t_r1"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--captions-per-image", type=int, default=5)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--variant")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.images, args.captions_per_image, args.dim)))
        return
    rows = []
    for variant in ("dense", "chunked"):
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--images", str(args.images),
                              "--captions-per-image", str(args.captions_per_image), "--dim", str(args.dim)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    dense, chunked = rows
    assert abs(dense["t2i_r1"] - chunked["t2i_r1"]) < 1e-12 and abs(dense["i2t_r1"] - chunked["i2t_r1"]) < 1e-12
    print(f"{args.images} images x {args.captions_per_image} captions, dim {args.dim} (same metrics both ways)")
    for r in rows:
        print(f"  {r['variant']:8s} {r['seconds']:7.2f} s   extra peak RSS {r['extra_peak_mb']:8.0f} MB")
    print(f"  chunked/dense: time {chunked['seconds'] / dense['seconds']:.2f}x, "
          f"peak memory {chunked['extra_peak_mb'] / max(dense['extra_peak_mb'], 1):.2f}x")


if __name__ == "__main__":
    main()
