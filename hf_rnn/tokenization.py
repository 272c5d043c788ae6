"""Subword tokenizers learned from the training split with the `tokenizers` library.

The result is a `PreTrainedTokenizerFast` that `save_pretrained` writes beside the model and that
`AutoTokenizer.from_pretrained` loads offline. Special tokens: `<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3;
every encoded text ends with `</s>`.
"""

import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
TOKENIZER_MODELS = ("wordpiece", "bpe", "unigram", "wordlevel")
UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD", "none")


@dataclass
class TokenizerConfig:
    """The `tokenizer` section of a recipe.

    Args:
        model: `wordpiece`, `bpe`, `unigram` or `wordlevel`.
        vocab_size: target vocabulary size, special tokens included.
        lowercase: lowercase before learning and encoding.
        unicode_normalization: `NFC`, `NFKC`, `NFD`, `NFKD` or `none`.
        strip_html: replace `<br />` line-break markup (as in IMDB) by a space.
        min_frequency: minimum count of a merge / word to enter the vocabulary.
        model_max_length: encoded texts are truncated to this many tokens.
        training_texts: at most this many texts (the first ones) are used to learn the vocabulary.
    """

    model: str = "wordpiece"
    vocab_size: int = 30000
    lowercase: bool = True
    unicode_normalization: str = "NFKC"
    strip_html: bool = True
    min_frequency: int = 2
    model_max_length: int = 512
    training_texts: int | None = None

    def __post_init__(self):
        if self.model not in TOKENIZER_MODELS:
            raise ValueError(f"`tokenizer.model` must be one of {list(TOKENIZER_MODELS)}, got {self.model!r}.")
        if self.unicode_normalization not in UNICODE_FORMS:
            raise ValueError(
                f"`tokenizer.unicode_normalization` must be one of {list(UNICODE_FORMS)}, "
                f"got {self.unicode_normalization!r}."
            )
        if self.vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"`tokenizer.vocab_size` must exceed {len(SPECIAL_TOKENS)}, got {self.vocab_size}.")
        if self.model_max_length < 2:
            raise ValueError(f"`tokenizer.model_max_length` must be at least 2, got {self.model_max_length}.")


def build_normalizer(config: TokenizerConfig) -> normalizers.Normalizer:
    steps = []
    if config.strip_html:
        steps.append(normalizers.Replace(Regex(r"<br\s*/?>"), " "))
    # Control characters (NUL included) carry no meaning in text and confuse tokenizers downstream.
    steps.append(normalizers.Replace(Regex(r"[\x00-\x08\x0b-\x1f\x7f]"), " "))
    if config.unicode_normalization != "none":
        steps.append(getattr(normalizers, config.unicode_normalization)())
    if config.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def build_tokenizer(config: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    """An untrained `tokenizers.Tokenizer` and its trainer.

    WordPiece and word-level split on whitespace and punctuation (their decoders rejoin words with
    spaces). BPE and Unigram use the Metaspace pre-tokenizer, whose decoder restores the original
    spacing exactly: use them where detokenised text is scored (translation).
    """
    common = {"vocab_size": config.vocab_size, "special_tokens": SPECIAL_TOKENS}
    if config.model == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(min_frequency=config.min_frequency, **common)
    elif config.model == "wordlevel":
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordLevelTrainer(min_frequency=config.min_frequency, **common)
    elif config.model == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK, byte_fallback=False))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(min_frequency=config.min_frequency, **common)
    else:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(unk_token=UNK, **common)
    tokenizer.normalizer = build_normalizer(config)
    return tokenizer, trainer


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig, eos_first: bool = False) -> PreTrainedTokenizerFast:
    """Learn a vocabulary from `texts` and wrap it as a transformers fast tokenizer.

    Every encoded text ends with `</s>`, or with `eos_first` starts with it (language models: texts joined into one
    stream are then separated alike, and an encoded prompt reads as the start of a text, which generation continues)."""
    tokenizer, trainer = build_tokenizer(config)
    if config.model == "wordpiece":
        tokenizer = train_wordpiece(tokenizer, trainer, list(limit(texts, config.training_texts)))
    else:
        tokenizer.train_from_iterator(limit(texts, config.training_texts), trainer=trainer)
    if eos_first:
        tokenizer.decoder = continuation_decoder(config.model)
    eos_id = tokenizer.token_to_id(EOS)
    single, pair = (f"{EOS} $A", f"{EOS} $A {EOS} $B") if eos_first else (f"$A {EOS}", f"$A {EOS} $B {EOS}")
    tokenizer.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=[(EOS, eos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        model_max_length=config.model_max_length,
        padding_side="right",
        truncation_side="right",
    )


# The per-token clean-up of `decoders.WordPiece(cleanup=True)` (tokenizers' `wordpiece::cleanup`).
WORDPIECE_CLEANUP = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]


def continuation_decoder(model: str) -> decoders.Decoder:
    """A language model's decoder: a word-initial token keeps its space even when it comes first, as GPT-2's
    byte-level decoder does. `pipeline("text-generation")` decodes only the generated tokens and appends them to
    the prompt string; with the usual decoders the first generated word lost its space ("This movieis")."""
    if model == "wordpiece":
        cleanup = [decoders.Replace(dirty, clean) for dirty, clean in WORDPIECE_CLEANUP]
        return decoders.Sequence(
            [decoders.Replace(Regex("^(?!##)"), " "), decoders.Replace(Regex("^##"), ""), *cleanup, decoders.Fuse()]
        )
    if model == "wordlevel":
        return decoders.Sequence([decoders.Replace(Regex("^"), " "), decoders.Fuse()])
    return decoders.Metaspace(prepend_scheme="never")


def train_wordpiece(tokenizer: Tokenizer, trainer: trainers.WordPieceTrainer, texts: list[str]) -> Tokenizer:
    """Train WordPiece so that the same texts always give the same vocabulary.

    `tokenizers` (0.23) gives `##x` continuation tokens their ids in hash-map order, and those ids break ties
    between equally frequent merges, so two trainings on the same texts can learn different vocabularies
    (huggingface/tokenizers#1794): runs with the same seed would then differ. Listing every `##x` as a special
    token, sorted, fixes their ids before training; the tokenizer is then rebuilt from the learned vocabulary with
    only the real special tokens, so `##x` stay ordinary subwords.
    """
    prefix = trainer.continuing_subword_prefix or "##"
    chars: set[str] = set()
    for text in texts:
        chars.update(tokenizer.normalizer.normalize_str(text))
    # BertPreTokenizer splits on whitespace and punctuation, so only other characters can continue a word.
    word_chars = sorted(char for char in chars if not char.isspace() and not is_bert_punctuation(char))
    trainer.special_tokens = SPECIAL_TOKENS + [prefix + char for char in word_chars]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    rebuilt = Tokenizer(models.WordPiece(tokenizer.get_vocab(with_added_tokens=True), unk_token=UNK))
    rebuilt.normalizer = tokenizer.normalizer
    rebuilt.pre_tokenizer = tokenizer.pre_tokenizer
    rebuilt.decoder = tokenizer.decoder
    rebuilt.add_special_tokens(SPECIAL_TOKENS)
    return rebuilt


def is_bert_punctuation(char: str) -> bool:
    """The punctuation test of `BertPreTokenizer`: ASCII punctuation or a Unicode `P*` category."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def limit(texts: Iterable[str], count: int | None) -> Iterator[str]:
    for index, text in enumerate(texts):
        if count is not None and index >= count:
            return
        yield text


def clean_text(text: str | None) -> str:
    """`text` made safe to tokenize: None becomes "", lone surrogates (from undecodable bytes) become U+FFFD.

    Python decodes command-line arguments and, in UTF-8 mode, stdin with `surrogateescape`, so invalid UTF-8
    bytes arrive as lone surrogates, which the Rust tokenizer refuses for the whole batch. Control characters
    and NUL bytes are handled by the tokenizer's normalizer (see `build_normalizer`).
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"texts must be strings, got {type(text).__name__}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # bytes that `surrogateescape` smuggled in: back to bytes, one U+FFFD per invalid byte
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def truncated_flags(encoded) -> list[bool]:
    """For a fast tokenizer's `BatchEncoding` made with `truncation=True`: which inputs lost tokens."""
    return [bool(encoding.overflowing) for encoding in encoded.encodings]


def count_truncated(tokenizer, texts: list[str], batch_size: int = 1000) -> int:
    """How many of `texts` are longer than the tokenizer's `model_max_length` (and so get truncated)."""
    count = 0
    for start in range(0, len(texts), batch_size):
        batch = [clean_text(text) for text in texts[start : start + batch_size]]
        count += sum(truncated_flags(tokenizer(batch, truncation=True)))
    return count


def decode_token_ids(tokenizer, token_ids: np.ndarray) -> list[str]:
    """Detokenised strings from generated ids or labels; -100 and everything after the first EOS are dropped."""
    texts = []
    for row in np.asarray(token_ids):
        row = row[row != -100]
        eos_positions = np.flatnonzero(row == tokenizer.eos_token_id)
        if len(eos_positions):
            row = row[: eos_positions[0]]
        texts.append(tokenizer.decode(row.tolist(), skip_special_tokens=True).strip())
    return texts
