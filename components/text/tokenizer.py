"""A BPE tokenizer trained on the captions, saved as `tokenizer/tokenizer.json` in the model artifact.

Every sequence is `[SOS] tokens [EOS] [PAD]...`, truncated so that EOS always survives: the text tower
pools at the first EOS.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from components.config import TokenizerConfig
from components.text.preprocessing import DEID, preprocessor

PAD, UNK, SOS, EOS = "[PAD]", "[UNK]", "[SOS]", "[EOS]"
# ids 0..4; EOS is not 2, which transformers' CLIP treats as legacy; DEID keeps report blanks one token.
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS, DEID)
TOKENIZER_FILE = "tokenizer.json"


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> CaptionTokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=config.vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return CaptionTokenizer(tokenizer, config)


class CaptionTokenizer:
    """Ours or a pretrained tower's `tokenizer.json`, with the special tokens its config names."""

    def __init__(self, tokenizer: Tokenizer, config: TokenizerConfig):
        ids = [tokenizer.token_to_id(t) if t else None for t in (config.pad_token, config.sos_token, config.eos_token)]
        if ids != [config.pad_id, config.sos_id, config.eos_id]:
            raise ValueError(f"tokenizer ids {ids} of {config.pad_token, config.sos_token, config.eos_token} "
                             f"do not match its config {[config.pad_id, config.sos_id, config.eos_id]}")
        sos, eos = config.sos_token, config.eos_token
        specials = [(eos, config.eos_id)] + ([(sos, config.sos_id)] if sos else [])
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{sos} $A {eos}" if sos else f"$A {eos}", special_tokens=specials)
        tokenizer.enable_truncation(config.context_length)
        tokenizer.enable_padding(pad_id=config.pad_id, pad_token=config.pad_token, length=config.context_length)
        self.tokenizer, self.config, self.preprocess = tokenizer, config, preprocessor(config.preprocessing)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """Token ids, shape (len(texts), context_length)."""
        encodings = self.tokenizer.encode_batch([self.preprocess(str(t)) for t in texts])
        return torch.tensor([e.ids for e in encodings], dtype=torch.long)

    def truncated(self, texts: list[str]) -> list[bool]:
        """Which texts were cut to fit the context length."""
        return [bool(e.overflowing) for e in self.tokenizer.encode_batch([self.preprocess(str(t)) for t in texts])]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / TOKENIZER_FILE))

    @classmethod
    def load(cls, directory: Path, config: TokenizerConfig) -> CaptionTokenizer:
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)), config)
