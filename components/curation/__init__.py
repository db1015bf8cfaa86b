"""Curation: which training rows to keep, judged by a model's pair scores, duplicates and leakage into eval
data. Every dropped row names the one rule that dropped it, so rows in = kept + dropped per rule."""
