"""Tokenizers learned with `tokenizers`, wrapped as transformers fast tokenizers."""

import time

import pytest
from datasets import load_dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from hf_rnn.data import SAMPLE_DATA_DIR
from hf_rnn.tokenization import TOKENIZER_MODELS, TokenizerConfig, train_tokenizer


@pytest.fixture(scope="module")
def imdb_texts() -> list[str]:
    return load_dataset("parquet", data_files=str(SAMPLE_DATA_DIR / "imdb" / "train.parquet"))["train"]["text"]


@pytest.fixture(scope="module")
def multi30k_texts() -> list[str]:
    pairs = load_dataset("parquet", data_files=str(SAMPLE_DATA_DIR / "multi30k" / "train.parquet"))["train"]
    return [text for pair in pairs["translation"] for text in (pair["de"], pair["en"])]


@pytest.mark.parametrize("model", TOKENIZER_MODELS)
def test_train_save_and_auto_load(tmp_path, imdb_texts, model):
    tokenizer = train_tokenizer(imdb_texts[:1000], TokenizerConfig(model=model, vocab_size=2000))
    assert 100 < len(tokenizer) <= 2000
    assert tokenizer.convert_tokens_to_ids(["<pad>", "<unk>", "<s>", "</s>"]) == [0, 1, 2, 3]
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = imdb_texts[1001]
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded(text)["input_ids"][-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("model", TOKENIZER_MODELS)
def test_a_language_models_tokenizer_decodes_a_continuation_with_its_leading_space(imdb_texts, model):
    """`pipeline("text-generation")` appends the decoded new tokens to the prompt string: a word-initial first token
    must bring its space ("this movie" + " is great"), a word-piece continuation none."""
    tokenizer = train_tokenizer(imdb_texts[:500], TokenizerConfig(model=model, vocab_size=2000), eos_first=True)
    prompt = tokenizer("this movie", add_special_tokens=False)["input_ids"]
    continuation = tokenizer(" is great, isn't it?", add_special_tokens=False)["input_ids"]
    assert "this movie" + tokenizer.decode(continuation) == tokenizer.decode(prompt + continuation).strip()
    assert tokenizer.decode(continuation).startswith(" is great")
    if model == "wordpiece":
        assert tokenizer.decode(tokenizer.convert_tokens_to_ids(["great", "##est", "."])) == " greatest."
    plain = train_tokenizer(imdb_texts[:500], TokenizerConfig(model=model, vocab_size=2000))
    assert plain.decode(continuation).startswith("is great")  # other tasks keep the usual decoders


def test_imdb_markup_is_stripped_and_text_lowercased(imdb_texts):
    tokenizer = train_tokenizer(imdb_texts[:500], TokenizerConfig(vocab_size=3000))
    tokens = tokenizer.tokenize("Great film.<br /><br />LOVED it")
    assert "<" not in "".join(tokens) and "br" not in tokens
    assert "loved" in tokens


def test_truncation_to_model_max_length(imdb_texts):
    tokenizer = train_tokenizer(imdb_texts[:500], TokenizerConfig(vocab_size=3000, model_max_length=32))
    encoded = tokenizer("word " * 10_000, truncation=True)
    assert len(encoded["input_ids"]) == 32


def test_30k_vocabulary_on_imdb_trains_in_seconds(shared_data_dir):
    texts = load_dataset("parquet", data_files=f"{shared_data_dir}/imdb/train.parquet")["train"]["text"]
    started = time.perf_counter()
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=30000))
    elapsed = time.perf_counter() - started
    assert len(tokenizer) == 30000
    assert elapsed < 60, f"learning a 30k vocabulary on 25k reviews took {elapsed:.1f} s"


@pytest.mark.parametrize("model", ["bpe", "unigram"])
def test_translation_tokenizers_detokenise_to_the_original_text(multi30k_texts, model):
    """sacreBLEU scores detokenised text: spacing, punctuation and umlauts must come back unchanged."""
    tokenizer = train_tokenizer(
        multi30k_texts, TokenizerConfig(model=model, vocab_size=4000, lowercase=False, unicode_normalization="NFC")
    )
    for text in multi30k_texts[-200:] + ["Ein Mädchen läuft über die Straße, (schnell!) - 3,5 km."]:
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


@pytest.fixture(scope="module")
def bpe_tokenizer(multi30k_texts):
    return train_tokenizer(multi30k_texts, TokenizerConfig(model="bpe", vocab_size=3000, lowercase=False))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_encodes_and_decodes_without_error(bpe_tokenizer, text):
    ids = bpe_tokenizer(text, truncation=True)["input_ids"]
    assert ids and ids[-1] == bpe_tokenizer.eos_token_id
    assert len(ids) <= bpe_tokenizer.model_max_length
    decoded = bpe_tokenizer.decode(ids, skip_special_tokens=True)
    assert isinstance(decoded, str)


def test_invalid_tokenizer_config_names_the_field():
    with pytest.raises(ValueError, match="tokenizer.model"):
        TokenizerConfig(model="sentencepiece")
    with pytest.raises(ValueError, match="unicode_normalization"):
        TokenizerConfig(unicode_normalization="NFX")
