"""Text-based person search (CUHK-PEDES / ICFG-PEDES / RSTPReid): tall crops padded to a square, P x K
identity batches with identity-aware contrast, and text-to-image search by identity (R@1/5/10, mAP, mINP)."""

from components.config import Augmentation, ObjectiveSpec
from components.domains.base import DomainPreset

PERSON = DomainPreset(
    name="person", formats=("cuhk-pedes", "icfg-pedes", "rstpreid"), text_preprocessing="plain",
    objectives=(ObjectiveSpec(name="identity"),), suite="person", primary_metric="t2i_r1",
    prompt_domain="person", image_fit="pad", images_per_identity=4, augment=Augmentation(crop=True))
