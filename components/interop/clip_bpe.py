"""open_clip's CLIP tokenizer (`SimpleTokenizer`, OpenAI's byte-level BPE with `</w>` word ends) as a
`tokenizers` tokenizer, built from its merges file (`bpe_simple_vocab_16e6.txt.gz`), as transformers' own
CLIP conversion builds it: the same ids for every text, after open_clip's clean-up (`openclip_lower`)."""

from __future__ import annotations

import gzip
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
MERGES = 49152 - 256 - 2  # open_clip reads this many merges from the file
MAX_FILE_BYTES = 8 << 20  # the file open_clip ships is 1.3 MB
WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in open_clip's order."""
    kept = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + i) for i in range(len(extra))]


def clip_bpe_tokenizer(merges_file: Path) -> Tokenizer:
    """The tokenizer of a CLIP merges file (gzip), ids as open_clip gives them (49,408 with the two specials)."""
    if merges_file.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{merges_file.name} is {merges_file.stat().st_size} bytes, not a CLIP merges file "
                         f"(at most {MAX_FILE_BYTES})")
    with gzip.open(merges_file, "rt", encoding="utf-8") as lines:
        merges = [tuple(line.split()) for line in lines.read().split("\n")[1:MERGES + 1]]
    if len(merges) != MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{merges_file.name} is not a CLIP merges file: expected {MERGES} pairs")
    alphabet = _byte_alphabet()
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["".join(m) for m in merges] + [SOT, EOT]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="",
                                     end_of_word_suffix="</w>", fuse_unk=False, unk_token=EOT))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(WORDS), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([SOT, EOT])
    return tokenizer
