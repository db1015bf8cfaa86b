"""State-dict maps between alignops' towers and another library's names, one list of links per architecture,
read both ways: the same links import and export, so a round trip gives back the same tensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

Op = str  # "copy" | "transpose" | "concat" | "lead1" | "lead2"


@dataclass(frozen=True)
class Link:
    """Our tensors `ours` are their tensors `theirs`, through `op`:

    - copy, transpose: one tensor each side (open_clip keeps projections as (in, out) matrices);
    - concat: several tensors on one side are the other side's one tensor cut along dim 0 (fused q/k/v);
      `sizes` gives the cut of their side where theirs is the several;
    - lead1, lead2: theirs has one or two leading dimensions of size 1 (timm's position and class tokens).
    """

    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    op: Op = "copy"
    sizes: tuple[int, ...] = ()


def same(ours: str, theirs: str, names: tuple[str, ...] = ("weight", "bias")) -> list[Link]:
    """`ours.weight` is `theirs.weight`, and so for each of `names`."""
    return [Link((f"{ours}.{n}",), (f"{theirs}.{n}",)) for n in names]


def fused(ours: str, theirs_weight: str, theirs_bias: str) -> list[Link]:
    """Our separate q/k/v projections under `ours` against their one fused in-projection."""
    parts = ("q_proj", "k_proj", "v_proj")
    return [Link(tuple(f"{ours}.{p}.weight" for p in parts), (theirs_weight,), "concat"),
            Link(tuple(f"{ours}.{p}.bias" for p in parts), (theirs_bias,), "concat")]


def to_ours(links: list[Link], theirs: Mapping[str, torch.Tensor], shapes: Mapping[str, torch.Size],
            where: str) -> dict[str, torch.Tensor]:
    """Their state dict as ours; every tensor checked against our model's shape (`shapes`), and every key of
    theirs used exactly once."""
    wanted = {name for link in links for name in link.theirs}
    missing, unused = sorted(wanted - set(theirs)), sorted(set(theirs) - wanted)
    if missing or unused:
        raise ValueError(f"{where} does not match the architecture: missing {_few(missing)}, unexpected "
                         f"{_few(unused)}; check the architecture name or config against the weights file")
    ours: dict[str, torch.Tensor] = {}
    for link in links:
        tensors = [theirs[name] for name in link.theirs]
        if link.op == "concat" and len(link.ours) > 1:
            pieces = torch.split(tensors[0], [shapes[name][0] for name in link.ours])
        elif link.op == "concat":
            pieces = (torch.cat(tensors),)
        elif link.op == "transpose":
            pieces = (tensors[0].t(),)
        elif link.op in ("lead1", "lead2"):
            pieces = (tensors[0].reshape(tensors[0].shape[int(link.op[-1]):]),)
        else:
            pieces = (tensors[0],)
        for name, piece in zip(link.ours, pieces, strict=True):
            if piece.shape != shapes[name]:
                raise ValueError(f"{where}: {link.theirs[0]} has shape {tuple(tensors[0].shape)}, which does not "
                                 f"give {name}'s {tuple(shapes[name])}; check the architecture against the weights")
            ours[name] = piece.contiguous()
    return ours


def _few(names: list[str]) -> str:
    return f"{len(names)} ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})" if names else "none"


def to_theirs(links: list[Link], ours: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in their names (the inverse of `to_ours`)."""
    theirs: dict[str, torch.Tensor] = {}
    for link in links:
        tensors = [ours[name] for name in link.ours]
        if link.op == "concat" and len(link.theirs) > 1:
            pieces = torch.split(tensors[0], list(link.sizes))
        elif link.op == "concat":
            pieces = (torch.cat(tensors),)
        elif link.op == "transpose":
            pieces = (tensors[0].t(),)
        elif link.op in ("lead1", "lead2"):
            pieces = (tensors[0].reshape((1,) * int(link.op[-1]) + tuple(tensors[0].shape)),)
        else:
            pieces = (tensors[0],)
        theirs.update({name: piece.contiguous().clone() for name, piece in zip(link.theirs, pieces, strict=True)})
    return theirs
