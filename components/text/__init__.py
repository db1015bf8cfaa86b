from components.text.tokenizer import CaptionTokenizer, TokenizerConfig, train_tokenizer

__all__ = ["CaptionTokenizer", "TokenizerConfig", "train_tokenizer"]
