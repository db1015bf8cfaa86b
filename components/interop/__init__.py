"""Models in and out of the ecosystem: open_clip and timm checkpoints mapped onto alignops' towers by name
(neither library is imported), and exports to open_clip, `transformers` and ONNX."""
