"""Remote sensing (RSICD / RSITMD / UCM in Karpathy JSON): plain-text captions, 90-degree rotations and
flips as augmentation (an aerial tile has no up), judged on the mean of the six recalls (mR)."""

from components.config import Augmentation, ObjectiveSpec
from components.domains.base import DomainPreset

REMOTE_SENSING = DomainPreset(
    name="remote_sensing", formats=("karpathy",), text_preprocessing="plain",
    objectives=(ObjectiveSpec(name="clip"),), suite="retrieval", primary_metric="mean_recall",
    prompt_domain="remote_sensing", image_fit="crop", augment=Augmentation(crop=True, rotations=True))
