"""Set-up shared by the serving benchmarks: a tiny model artifact and a small dataset for its gallery."""

from __future__ import annotations

from pathlib import Path


def untrained_artifact(directory: Path, preset_name: str = "tiny") -> Path:
    """A model of the preset (untrained: serving cost does not depend on the weights' values)."""
    import torch

    from components.config import preset
    from components.models.artifact import Lineage, ModelArtifact
    from components.models.dual_encoder import DualEncoder
    from components.text.tokenizer import train_tokenizer

    torch.manual_seed(0)
    config = preset(preset_name)
    tokenizer = train_tokenizer(["two red circles on the left", "a blue square at the top"] * 50, config.tokenizer)
    config.tokenizer.vocab_size = tokenizer.vocab_size
    return ModelArtifact(DualEncoder(config).eval(), tokenizer, Lineage()).save(directory / "artifact")


def gallery_dataset(directory: Path) -> Path:
    from components.config import SyntheticDataConfig
    from components.data.generators.synthetic import generate_dataset

    generate_dataset(SyntheticDataConfig(train_images=10, val_images=10, test_images=50), directory / "gallery")
    return directory / "gallery"
