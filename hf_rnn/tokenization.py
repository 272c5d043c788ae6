"""Subword tokenizers learned from the training split with the `tokenizers` library.

The result is a `PreTrainedTokenizerFast` that `save_pretrained` writes beside the model and that
`AutoTokenizer.from_pretrained` loads offline. Special tokens: `<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3;
every encoded text ends with `</s>`.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Learn a vocabulary from `texts` and wrap it as a transformers fast tokenizer."""
    tokenizer, trainer = build_tokenizer(config)
    tokenizer.train_from_iterator(limit(texts, config.training_texts), trainer=trainer)
    eos_id = tokenizer.token_to_id(EOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, eos_id)]
    )
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


def limit(texts: Iterable[str], count: int | None) -> Iterator[str]:
    for index, text in enumerate(texts):
        if count is not None and index >= count:
            return
        yield text
