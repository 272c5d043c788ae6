"""RnnClassifier model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

CELL_TYPES = ("rnn", "lstm", "gru")
POOLING_TYPES = ("last", "mean", "max", "mean_max", "attention")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a `ValueError` naming the field when `value` is not one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")


def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_probability(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1), got {value!r}.")


@strict
class RnnClassifierConfig(PreTrainedConfig):
    r"""
    Configuration of a recurrent text classifier ([`RnnForSequenceClassification`]).

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Number of tokens in the vocabulary (size of the embedding matrix).
        embedding_size (`int`, *optional*, defaults to 256):
            Dimension of the token embeddings.
        hidden_size (`int`, *optional*, defaults to 256):
            Hidden size of the recurrent layers, per direction.
        num_hidden_layers (`int`, *optional*, defaults to 1):
            Number of stacked recurrent layers.
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            Recurrent cell: `"rnn"` (Elman, tanh), `"lstm"` or `"gru"`.
        bidirectional (`bool`, *optional*, defaults to `True`):
            Whether each layer also reads the text right to left.
        embedding_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the token embeddings.
        rnn_dropout (`float`, *optional*, defaults to 0.0):
            Dropout between stacked recurrent layers (no effect with one layer).
        classifier_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the pooled text vector before the classification head.
        pooling (`str`, *optional*, defaults to `"mean_max"`):
            How the per-token states become one vector: `"last"` (final state of each direction),
            `"mean"`, `"max"`, `"mean_max"` (both, concatenated) or `"attention"` (learned
            attention over tokens). Padding never takes part.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Standard deviation of the normal initialisation of the embeddings.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token; its embedding is kept at zero.
        id2label / label2id (`dict`):
            The label names (pass both), as for every transformers config. Defaults to two labels.

    Example:

    ```python
    >>> from hf_rnn import RnnClassifierConfig, RnnForSequenceClassification
    >>> config = RnnClassifierConfig(cell_type="gru", pooling="attention", id2label={0: "neg", 1: "pos"},
    ...                              label2id={"neg": 0, "pos": 1})
    >>> model = RnnForSequenceClassification(config)
    ```
    """

    model_type = "rnn_classifier"

    vocab_size: int = 30000
    embedding_size: int = 256
    hidden_size: int = 256
    num_hidden_layers: int = 1
    cell_type: str = "lstm"
    bidirectional: bool = True
    embedding_dropout: float | int = 0.1
    rnn_dropout: float | int = 0.0
    classifier_dropout: float | int = 0.2
    pooling: str = "mean_max"
    initializer_range: float = 0.1
    pad_token_id: int | None = 0

    def __post_init__(self, **kwargs):
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers"):
            check_positive(name, getattr(self, name))
        check_choice("cell_type", self.cell_type, CELL_TYPES)
        check_choice("pooling", self.pooling, POOLING_TYPES)
        for name in ("embedding_dropout", "rnn_dropout", "classifier_dropout"):
            check_probability(name, getattr(self, name))
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"`pad_token_id` must be in [0, vocab_size={self.vocab_size}), got {self.pad_token_id}.")
        super().__post_init__(**kwargs)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1


__all__ = ["RnnClassifierConfig"]
