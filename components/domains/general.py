"""General image-text data (captioned photos, the generated demo set): retrieval in both directions,
judged on the mean of the six recalls. Text and images as the model has them, no augmentation: the
pretraining recipe, and the finetune path for a user's own general data."""

from components.config import ObjectiveSpec
from components.domains.base import DomainPreset

GENERAL = DomainPreset(
    name="general", formats=("csv", "tsv", "jsonl", "parquet", "coco", "webdataset"),
    objectives=(ObjectiveSpec(name="clip"),), suite="retrieval", primary_metric="mean_recall", prompt_domain="general")
