"""RnnLm model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# Copied from hf_rnn.models.rnn_classifier.configuration_rnn_classifier.CELL_TYPES
CELL_TYPES = ("rnn", "lstm", "gru")
SOFTMAX_TYPES = ("full", "adaptive")


# Copied from hf_rnn.models.rnn_classifier.configuration_rnn_classifier.check_choice
def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a `ValueError` naming the field when `value` is not one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")


# Copied from hf_rnn.models.rnn_classifier.configuration_rnn_classifier.check_positive
def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


# Copied from hf_rnn.models.rnn_classifier.configuration_rnn_classifier.check_probability
def check_probability(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1), got {value!r}.")


# Copied from hf_rnn.models.rnn_seq2seq.configuration_rnn_seq2seq.check_token_id
def check_token_id(name: str, value: int | None, vocab_name: str, vocab_size: int) -> None:
    if value is not None and not 0 <= value < vocab_size:
        raise ValueError(f"`{name}` must be in [0, {vocab_name}={vocab_size}), got {value!r}.")


@strict
class RnnLmConfig(PreTrainedConfig):
    r"""
    Configuration of a recurrent language model ([`RnnForCausalLM`]) in the style of AWD-LSTM (Merity et al., 2018,
    "Regularizing and Optimizing LSTM Language Models"): stacked unidirectional RNN / LSTM / GRU layers regularised
    by embedding dropout, variational (locked) dropout, DropConnect on the recurrent weights and activation
    regularisation, with a full or an adaptive softmax (Grave et al., 2017) tied to the input embeddings. The defaults
    are AWD-LSTM's for WikiText-103-sized vocabularies.

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Number of tokens in the vocabulary.
        embedding_size (`int`, *optional*, defaults to 400):
            Dimension of the token embeddings (and of the output token vectors when tied).
        hidden_size (`int`, *optional*, defaults to 1150):
            Hidden size of every recurrent layer.
        num_hidden_layers (`int`, *optional*, defaults to 3):
            Number of stacked recurrent layers.
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            Recurrent cell: `"rnn"` (Elman, tanh), `"lstm"` or `"gru"`.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the output layer's token vectors are the input embeddings. When `hidden_size` differs from
            `embedding_size`, a bias-free projection maps the last layer's outputs to `embedding_size` first.
        embedding_dropout (`float`, *optional*, defaults to 0.1):
            AWD-LSTM's "dropoute": in training, each word type (a row of the embedding matrix) is dropped with this
            probability for the whole batch, and the kept ones are scaled by `1 / (1 - p)`.
        input_dropout (`float`, *optional*, defaults to 0.65):
            Locked (variational) dropout on the embedded inputs: one mask per sequence and feature, shared over time.
        hidden_dropout (`float`, *optional*, defaults to 0.3):
            Locked dropout on the outputs of every recurrent layer but the last.
        output_dropout (`float`, *optional*, defaults to 0.4):
            Locked dropout on the last layer's outputs, before the output layer.
        weight_dropout (`float`, *optional*, defaults to 0.5):
            DropConnect on every layer's hidden-to-hidden weight matrix: a fresh mask per forward call in training.
        activation_regularization (`float`, *optional*, defaults to 2.0):
            AR: in training, `alpha * mean(h ** 2)` over the last layer's outputs after output dropout is added to
            the loss.
        temporal_activation_regularization (`float`, *optional*, defaults to 1.0):
            TAR: in training, `beta * mean((h_t - h_{t-1}) ** 2)` over the last layer's outputs before dropout is added
            to the loss.
        softmax (`str`, *optional*, defaults to `"adaptive"`):
            `"full"` (one linear layer over the vocabulary) or `"adaptive"` (a head over the most frequent tokens and
            one logit per tail cluster, then each tail cluster's tokens: the loss computes a tail only for the tokens
            that fall in it).
        adaptive_cutoffs (`list[int]`, *optional*, defaults to `[2000, 10000]`):
            Frequency ranks where the adaptive softmax's clusters start: the head holds ranks `[0, c_0)`, tail `i`
            ranks `[c_i, c_{i+1})` (the last one up to `vocab_size`). Increasing, positive and below `vocab_size`;
            read only with `softmax="adaptive"`.
        token_order (`list[int]`, *optional*):
            The token ids sorted by descending training frequency (a permutation of `range(vocab_size)`): the ranks
            of `adaptive_cutoffs` refer to positions in this list. `None` means ids in their own order.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Standard deviation of the normal initialisation of the embeddings and of untied output token vectors.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token; its embedding starts at zero.
        bos_token_id (`int`, *optional*):
            Id of the beginning-of-text token, if the tokenizer has one.
        eos_token_id (`int`, *optional*):
            Id of the end-of-text token; generation stops there.
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether `forward` returns the recurrent state (a [`RnnLmCache`]), so that generation feeds one token per
            step and streamed training carries the state from one window to the next.

    Example:

    ```python
    >>> from hf_rnn.models.rnn_lm import RnnForCausalLM, RnnLmConfig
    >>> config = RnnLmConfig(vocab_size=8000, hidden_size=512, softmax="adaptive", adaptive_cutoffs=[1000, 4000])
    >>> model = RnnForCausalLM(config)
    ```
    """

    model_type = "rnn_lm"
    keys_to_ignore_at_inference = ["cache"]

    vocab_size: int = 30000
    embedding_size: int = 400
    hidden_size: int = 1150
    num_hidden_layers: int = 3
    cell_type: str = "lstm"
    tie_word_embeddings: bool = True
    embedding_dropout: float | int = 0.1
    input_dropout: float | int = 0.65
    hidden_dropout: float | int = 0.3
    output_dropout: float | int = 0.4
    weight_dropout: float | int = 0.5
    activation_regularization: float | int = 2.0
    temporal_activation_regularization: float | int = 1.0
    softmax: str = "adaptive"
    adaptive_cutoffs: list[int] | tuple[int, ...] = (2000, 10000)
    token_order: list[int] | None = None
    initializer_range: float = 0.1
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers"):
            check_positive(name, getattr(self, name))
        check_choice("cell_type", self.cell_type, CELL_TYPES)
        check_choice("softmax", self.softmax, SOFTMAX_TYPES)
        for name in ("embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout", "weight_dropout"):
            check_probability(name, getattr(self, name))
        for name in ("activation_regularization", "temporal_activation_regularization"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}.")
        self.adaptive_cutoffs = list(self.adaptive_cutoffs)
        if self.softmax == "adaptive":
            cutoffs = self.adaptive_cutoffs
            if not cutoffs or cutoffs[0] < 1 or cutoffs[-1] >= self.vocab_size:
                raise ValueError(
                    f"`adaptive_cutoffs` must hold at least one rank in [1, vocab_size={self.vocab_size}), got "
                    f"{cutoffs}: lower them or use `softmax='full'`."
                )
            if any(later <= earlier for earlier, later in zip(cutoffs, cutoffs[1:])):
                raise ValueError(f"`adaptive_cutoffs` must be strictly increasing, got {cutoffs}.")
        if self.token_order is not None and sorted(self.token_order) != list(range(self.vocab_size)):
            raise ValueError(
                f"`token_order` must be a permutation of the {self.vocab_size} token ids (every id once), got "
                f"{len(self.token_order)} values."
            )
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            check_token_id(name, getattr(self, name), "vocab_size", self.vocab_size)
        super().__post_init__(**kwargs)


__all__ = ["RnnLmConfig"]
