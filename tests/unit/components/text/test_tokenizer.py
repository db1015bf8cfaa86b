from components.config import TokenizerConfig
from components.text.tokenizer import CaptionTokenizer, train_tokenizer

CAPTIONS = ["two red circles on the left", "a blue square at the top", "three yellow triangles"] * 20


def test_every_sequence_ends_with_eos_even_when_truncated():
    config = TokenizerConfig(vocab_size=300, context_length=6)
    tokenizer = train_tokenizer(CAPTIONS, config)
    ids = tokenizer(["two red circles on the left and a blue square at the top", "a", ""])
    assert ids.shape == (3, 6)
    for row in ids.tolist():
        assert row[0] == config.sos_id and row.count(config.eos_id) == 1
        eos = row.index(config.eos_id)
        assert all(t == config.pad_id for t in row[eos + 1:])
    assert ids[0, -1] == config.eos_id  # truncation keeps EOS


def test_save_load_round_trip(tmp_path):
    config = TokenizerConfig(vocab_size=300, context_length=16)
    tokenizer = train_tokenizer(CAPTIONS, config)
    tokenizer.save(tmp_path)
    loaded = CaptionTokenizer.load(tmp_path, config)
    texts = ["a purple wedge", "Two RED circles!", "unseen words ünïcode"]
    assert loaded(texts).tolist() == tokenizer(texts).tolist()
    assert tokenizer(["TWO Red"]).tolist() == tokenizer(["two red"]).tolist()  # lowercased
