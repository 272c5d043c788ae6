"""RnnSeq2Seq model configuration."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# Copied from hf_rnn.models.rnn_classifier.configuration_rnn_classifier.CELL_TYPES
CELL_TYPES = ("rnn", "lstm", "gru")
BRIDGE_TYPES = ("zero", "last", "learned")
ATTENTION_TYPES = ("none", "bahdanau", "luong_dot", "luong_general", "luong_concat")


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


def check_token_id(name: str, value: int | None, vocab_name: str, vocab_size: int) -> None:
    if value is not None and not 0 <= value < vocab_size:
        raise ValueError(f"`{name}` must be in [0, {vocab_name}={vocab_size}), got {value!r}.")


@strict
class RnnSeq2SeqConfig(PreTrainedConfig):
    r"""
    Configuration of a recurrent attention encoder-decoder ([`RnnSeq2SeqForConditionalGeneration`]), in the
    family of Bahdanau et al. (2015) and Luong et al. (2015). The defaults suit a small translation task such as
    Multi30k with a joint BPE vocabulary of about 10k tokens.

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of tokens in the source vocabulary (and the target one when `target_vocab_size` is `None`).
        target_vocab_size (`int`, *optional*):
            Number of tokens in the target vocabulary. `None` means the source and target share one vocabulary
            of `vocab_size` tokens; it is resolved to `vocab_size` on creation.
        embedding_size (`int`, *optional*, defaults to 256):
            Dimension of the source and target token embeddings.
        hidden_size (`int`, *optional*, defaults to 512):
            Hidden size of the decoder RNN and of each direction of the encoder RNN.
        encoder_layers (`int`, *optional*, defaults to 1):
            Number of stacked encoder RNN layers.
        decoder_layers (`int`, *optional*, defaults to 1):
            Number of stacked decoder RNN layers (also readable as `num_hidden_layers`).
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            Recurrent cell of encoder and decoder: `"rnn"` (Elman, tanh), `"lstm"` or `"gru"`.
        encoder_bidirectional (`bool`, *optional*, defaults to `True`):
            Whether each encoder layer also reads the source right to left. The encoder states then have size
            `2 * hidden_size`.
        bridge (`str`, *optional*, defaults to `"learned"`):
            How the decoder's initial state is made from the encoder. The top encoder layer's final states (forward
            and backward concatenated, size `num_directions * hidden_size`, taken at each sentence's last real
            token) form one vector per sentence, which initialises every decoder layer:
            `"zero"`: zeros, the encoder is reached through attention only;
            `"last"`: that vector as is when its size is `hidden_size` (unidirectional encoder), else mapped to
            `hidden_size` by a bias-free linear projection (no nonlinearity);
            `"learned"`: `tanh(Linear(vector))`, as in Joey NMT.
            For LSTMs the bridged vector initialises both the hidden and the cell state, as Joey NMT does.
        attention_type (`str`, *optional*, defaults to `"luong_general"`):
            `"none"` (no attention: the decoder sees the source only through the bridge), `"bahdanau"` (additive;
            the previous decoder state queries the source before the RNN step and the context is fed to the RNN),
            `"luong_dot"` (`s^T h`, needs a unidirectional encoder so sizes match), `"luong_general"` (`s^T W h`) or
            `"luong_concat"` (`v^T tanh(W_q s + W_k h)`); the Luong types query with the new decoder state after the
            RNN step. Padding in the source never receives attention.
        input_feeding (`bool`, *optional*, defaults to `False`):
            Whether the previous attentional vector is fed to the decoder RNN with the next target embedding
            (Luong et al.). It forces the step-by-step decoder loop in training; leaving it off with a Luong
            attention lets the whole target side run as one recurrent call.
        attentional_size (`int`, *optional*):
            Size of the attentional vector `tanh(W_c [s; context])` fed to the output layer. `None` resolves to
            `embedding_size`, so that `tie_word_embeddings` always fits. Must equal `embedding_size` when tied.
        embedding_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the source and target token embeddings.
        rnn_dropout (`float`, *optional*, defaults to 0.2):
            Dropout between stacked recurrent layers (no effect with one layer).
        output_dropout (`float`, *optional*, defaults to 0.3):
            Dropout on the attentional vector before the output projection.
        share_embeddings (`bool`, *optional*, defaults to `True`):
            Whether source and target use one embedding matrix. Requires a joint vocabulary
            (`target_vocab_size` `None` or equal to `vocab_size`).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the output projection reuses the target embedding matrix.
        target_token_ids (`list[int]`, *optional*):
            The token ids the decoder can produce: the output layer scores only these (every other id gets the
            dtype's minimum logit and is never generated) and the loss is a softmax over them. `None` means every id
            of the target vocabulary. With a joint source/target vocabulary, the training path sets it to the ids
            that occur in the training targets plus the special tokens, as a separate target vocabulary would (Joey
            NMT, Marian): output rows that are never a target receive only push-down gradients, which Adam turns
            into full-size steps for every such row at every step; with half the joint vocabulary source-only, that
            drowned the token-specific signal and an untied model stayed near the unigram loss.
        label_smoothing (`float`, *optional*, defaults to 0.1):
            Label smoothing of the cross-entropy loss.
        teacher_forcing_ratio (`float`, *optional*, defaults to 1.0):
            In training mode, the probability that a decoder step reads the gold previous token rather than the
            model's own argmax prediction (scheduled sampling). Read at every forward call, so a training callback
            may lower it over time. Evaluation mode always reads gold tokens.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Standard deviation of the normal initialisation of the embeddings and of an untied output layer (the
            same scale whether or not the output layer is tied; Xavier's much smaller one stalls Adam training).
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token (both vocabularies); its embedding is kept at zero.
        bos_token_id (`int`, *optional*, defaults to 1):
            Id of the beginning-of-sentence token.
        eos_token_id (`int`, *optional*, defaults to 2):
            Id of the end-of-sentence token; generation stops there.
        decoder_start_token_id (`int`, *optional*, defaults to 1):
            Target token that starts decoding; `labels` are shifted right behind it.
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether the model returns its recurrent decoder state (a [`RnnSeq2SeqCache`]) outside training, so
            that generation feeds one token per step.
        is_encoder_decoder (`bool`, *optional*, defaults to `True`):
            Always `True` for this model.

    Generation defaults (`max_new_tokens=100`, beams, ...) live in the model's `generation_config`.

    Example:

    ```python
    >>> from hf_rnn import RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration
    >>> config = RnnSeq2SeqConfig(vocab_size=8000, attention_type="bahdanau", input_feeding=True)
    >>> model = RnnSeq2SeqForConditionalGeneration(config)
    ```
    """

    model_type = "rnn_seq2seq"
    attribute_map = {"num_hidden_layers": "decoder_layers"}
    keys_to_ignore_at_inference = ["cache", "encoder_last_hidden_state"]

    vocab_size: int = 10000
    target_vocab_size: int | None = None
    embedding_size: int = 256
    hidden_size: int = 512
    encoder_layers: int = 1
    decoder_layers: int = 1
    cell_type: str = "lstm"
    encoder_bidirectional: bool = True
    bridge: str = "learned"
    attention_type: str = "luong_general"
    input_feeding: bool = False
    attentional_size: int | None = None
    embedding_dropout: float | int = 0.2
    rnn_dropout: float | int = 0.2
    output_dropout: float | int = 0.3
    share_embeddings: bool = True
    tie_word_embeddings: bool = True
    target_token_ids: list[int] | None = None
    label_smoothing: float | int = 0.1
    teacher_forcing_ratio: float | int = 1.0
    initializer_range: float = 0.1
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    decoder_start_token_id: int | None = 1
    use_cache: bool = True
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        for name in ("vocab_size", "embedding_size", "hidden_size", "encoder_layers", "decoder_layers"):
            check_positive(name, getattr(self, name))
        for name in ("target_vocab_size", "attentional_size"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        check_choice("cell_type", self.cell_type, CELL_TYPES)
        check_choice("bridge", self.bridge, BRIDGE_TYPES)
        check_choice("attention_type", self.attention_type, ATTENTION_TYPES)
        for name in ("embedding_dropout", "rnn_dropout", "output_dropout", "label_smoothing"):
            check_probability(name, getattr(self, name))
        if not 0.0 <= self.teacher_forcing_ratio <= 1.0:
            raise ValueError(f"`teacher_forcing_ratio` must be in [0, 1], got {self.teacher_forcing_ratio!r}.")

        if self.share_embeddings and self.target_vocab_size not in (None, self.vocab_size):
            raise ValueError(
                f"`share_embeddings=True` needs one joint vocabulary, but `target_vocab_size={self.target_vocab_size}` "
                f"differs from `vocab_size={self.vocab_size}`: set `share_embeddings=False` or drop `target_vocab_size`."
            )
        if self.target_vocab_size is None:
            self.target_vocab_size = self.vocab_size
        if self.tie_word_embeddings and self.attentional_size not in (None, self.embedding_size):
            raise ValueError(
                f"`tie_word_embeddings=True` needs `attentional_size` equal to `embedding_size={self.embedding_size}`, "
                f"got {self.attentional_size}."
            )
        if self.attentional_size is None:
            self.attentional_size = self.embedding_size
        if self.attention_type == "luong_dot" and self.encoder_output_size != self.hidden_size:
            raise ValueError(
                f"`attention_type='luong_dot'` compares decoder states (size {self.hidden_size}) with encoder states "
                f"(size {self.encoder_output_size}) directly: use a unidirectional encoder or 'luong_general'."
            )
        if self.attention_type == "none" and self.bridge == "zero":
            raise ValueError(
                "`bridge='zero'` with `attention_type='none'` leaves the decoder without any view of the source: "
                "choose bridge 'last' or 'learned', or an attention."
            )
        if not self.is_encoder_decoder:
            raise ValueError("`is_encoder_decoder` must be True for rnn_seq2seq.")
        if self.target_token_ids is not None:
            self.target_token_ids = sorted(set(self.target_token_ids))
            if not self.target_token_ids:
                raise ValueError("`target_token_ids` must list at least one token id, or be None (every id).")
            for token_id in (self.target_token_ids[0], self.target_token_ids[-1]):
                check_token_id("target_token_ids", token_id, "target_vocab_size", self.target_vocab_size)
            if self.eos_token_id is not None and self.eos_token_id not in self.target_token_ids:
                raise ValueError(f"`target_token_ids` must include `eos_token_id={self.eos_token_id}`.")
        check_token_id("pad_token_id", self.pad_token_id, "vocab_size", self.vocab_size)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            check_token_id(name, getattr(self, name), "target_vocab_size", self.target_vocab_size)
        super().__post_init__(**kwargs)

    @property
    def num_directions(self) -> int:
        """Number of encoder directions (2 if `encoder_bidirectional`)."""
        return 2 if self.encoder_bidirectional else 1

    @property
    def encoder_output_size(self) -> int:
        """Size of the encoder states the decoder attends to: `num_directions * hidden_size`."""
        return self.num_directions * self.hidden_size


__all__ = ["RnnSeq2SeqConfig"]
