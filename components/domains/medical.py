"""Chest X-rays with radiology reports (MIMIC-CXR style): reports cut to FINDINGS + IMPRESSION at import
(`--impression-only` keeps the impression), shorthand expanded and de-identification blanks kept as one
token, grayscale images (DICOM windowed on import) without colour jitter; retrieval plus zero-shot
classification over finding prompts (one positive per image, CheXpert 5x200 style)."""

from components.config import Augmentation, ObjectiveSpec
from components.domains.base import DomainPreset

MEDICAL = DomainPreset(
    name="medical", formats=("mimic-cxr", "csv", "jsonl"), text_preprocessing="medical",
    image_fit="crop", objectives=(ObjectiveSpec(name="clip"),), suite="zero_shot", primary_metric="zs_top1",
    prompt_domain="medical", augment=Augmentation(crop=True, grayscale=True))
