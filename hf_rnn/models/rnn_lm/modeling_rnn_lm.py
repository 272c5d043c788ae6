"""PyTorch recurrent (RNN / LSTM / GRU) language model in the style of AWD-LSTM.

Merity et al. (2018), "Regularizing and Optimizing LSTM Language Models": stacked left-to-right recurrent layers
regularised by embedding dropout, locked (variational) dropout, DropConnect on the hidden-to-hidden weights and
activation regularisation (AR / TAR), with an output layer tied to the embeddings: a full softmax or an adaptive one
(Grave et al., 2017, "Efficient softmax approximation for GPUs").

The embeddings and recurrent layers carry the classifier's parameter names (`rnn.embeddings.*`,
`rnn.encoder.layers.{i}.forward_rnn.*`), so a trained language model initialises a classifier's encoder.

This file is self-contained (the standard library, torch, transformers and its own configuration only), so it can
ship as Hub remote code.
"""

import copy
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_rnn_lm import RnnLmConfig

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

# Copied from hf_rnn.models.rnn_classifier.modeling_rnn_classifier.RNN_CLASSES
RNN_CLASSES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# Copied from hf_rnn.models.rnn_classifier.modeling_rnn_classifier.valid_first_index
def valid_first_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Per-row positions that move the real tokens to the front, in their order.

    Works for right padding (identity) and left padding alike. `attention_mask`: `(batch, seq_len)`;
    returns `(batch, seq_len)` long indices for `torch.gather` along dim 1.
    """
    is_padding = (attention_mask == 0).to(torch.uint8)
    return torch.sort(is_padding, dim=1, stable=True).indices


# Copied from hf_rnn.models.rnn_classifier.modeling_rnn_classifier.gather_time
def gather_time(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`states[b, index[b, t]]` for `(batch, seq_len, dim)` states and `(batch, seq_len)` indices."""
    return states.gather(1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))


# Copied from hf_rnn.models.rnn_classifier.modeling_rnn_classifier.init_recurrent_weights
def init_recurrent_weights(module: nn.RNNBase) -> None:
    """Xavier input weights, orthogonal hidden weights, zero biases; LSTM forget-gate bias 1.

    Parameters already loaded from a checkpoint (`_is_hf_initialized`) are left alone.
    """
    for name, param in module.named_parameters():
        if getattr(param, "_is_hf_initialized", False):
            continue
        if name.startswith("weight_ih"):
            init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            init.orthogonal_(param)
        elif name.startswith("bias"):
            init.zeros_(param)
            if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                with torch.no_grad():
                    param[module.hidden_size : 2 * module.hidden_size].fill_(1.0)


# Copied from hf_rnn.models.rnn_seq2seq.modeling_rnn_seq2seq.select_state_rows
def select_state_rows(
    states: torch.Tensor | tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Batch rows `rows` of recurrent states `(layers, batch, hidden)` (or of both tensors of an LSTM pair)."""
    if isinstance(states, tuple):
        return tuple(state.index_select(1, rows) for state in states)
    return states.index_select(1, rows)


def locked_dropout(inputs: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout on `(batch, seq_len, features)`: one mask per row and feature, the same at every step."""
    if not training or p == 0:
        return inputs
    mask = inputs.new_empty(inputs.shape[0], 1, inputs.shape[2]).bernoulli_(1 - p)
    return inputs * mask / (1 - p)


def drop_word_types(embedded: torch.Tensor, input_ids: torch.Tensor, vocab_size: int, p: float) -> torch.Tensor:
    """AWD-LSTM's embedding dropout ("dropoute") on `embedded` `(batch, seq_len, dim)` of `input_ids`: each word type
    is dropped with probability `p` for the whole batch (every occurrence alike, as dropping rows of the embedding
    matrix does) and the kept ones are scaled by `1 / (1 - p)`. Masking the looked-up vectors rather than the matrix
    leaves the output layer's tied token vectors untouched, as in AWD-LSTM."""
    keep = embedded.new_empty(vocab_size).bernoulli_(1 - p) / (1 - p)
    return embedded * keep[input_ids].unsqueeze(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `(batch, seq_len, features)` values over the positions where the boolean `mask` `(batch, seq_len)` is
    True (every position when `mask` is None)."""
    if mask is None:
        return values.mean()
    return (values * mask.unsqueeze(-1)).sum() / (mask.sum() * values.shape[-1]).clamp(min=1)


class RnnLmCache:
    """Recurrent state between calls: the RNN counterpart of a key/value cache.

    `forward` returns one (`use_cache`); passing it back continues from that state, so that generation feeds one token
    per step and streamed training carries the state from one window to the next (pass `cache.detach()` there, so
    that the backward pass stops at the window). `generate` reorders it for beam search through `reorder_cache`.

    Args:
        layer_states: per layer, its hidden state `(1, batch, hidden_size)` after the tokens read so far, or the pair
            `(h, c)` of such tensors for an LSTM (what `torch.nn.LSTM` takes and returns).
        seen_tokens: number of positions read so far (padding included, as `attention_mask` counts them).
    """

    is_compileable = False

    def __init__(self, layer_states: list[RecurrentState], seen_tokens: int):
        self.layer_states = layer_states
        self.seen_tokens = seen_tokens

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of positions already read."""
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select the batch rows `beam_idx` `(batch,)` in place (beam search keeps the best hypotheses)."""
        self.layer_states = [select_state_rows(state, beam_idx) for state in self.layer_states]

    def detach(self) -> "RnnLmCache":
        """A copy whose states are detached from the autograd graph."""
        layer_states = [
            tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()
            for state in self.layer_states
        ]
        return RnnLmCache(layer_states, self.seen_tokens)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(layers={len(self.layer_states)}, seen_tokens={self.seen_tokens})"


class RnnLmLayer(GradientCheckpointingLayer):
    """One left-to-right recurrent layer (`forward_rnn`, named as in the classifier's `RnnEncoderLayer`) with
    DropConnect on its hidden-to-hidden weights in training. With gradient checkpointing on, its activations are
    recomputed in the backward pass (with the same DropConnect mask) instead of kept."""

    def __init__(self, cell_type: str, input_size: int, hidden_size: int, weight_dropout: float):
        super().__init__()
        self.forward_rnn = RNN_CLASSES[cell_type](input_size, hidden_size, batch_first=True)
        self.weight_dropout = weight_dropout

    def forward(
        self, inputs: torch.Tensor, initial_state: RecurrentState | None, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """Run over `inputs` `(batch, seq_len, input_size)` from `initial_state` (zeros when None).

        `lengths` `(batch,)` (each >= 1) counts the real tokens at the front of each row, or is None when every
        position is real. Returns the outputs `(batch, seq_len, hidden_size)` (zeros after each row's length) and the
        state after each row's last real token, shaped as `torch.nn.LSTM` returns it.
        """
        seq_len = inputs.shape[1]
        if lengths is not None:
            # Packing stops each row's recurrence at its own length, so the final state (an LSTM's cell state too,
            # which the outputs do not show) is the one after the row's last real token.
            inputs = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        if self.training and self.weight_dropout > 0:
            # DropConnect: the RNN runs with a dropped copy of `weight_hh_l0` (a fresh mask per call); the parameter
            # and its state-dict key stay as they are. `nn.RNNBase` notices the swapped weight and rebuilds the list
            # of weights it runs with (on CUDA, `flatten_parameters` copies them into one buffer, so cuDNN gets them
            # contiguous and does not warn), and again on the next call, when the parameter is back.
            dropped = nn.functional.dropout(self.forward_rnn.weight_hh_l0, self.weight_dropout, training=True)
            outputs, final_state = torch.func.functional_call(
                self.forward_rnn, {"weight_hh_l0": dropped}, (inputs, initial_state)
            )
        else:
            outputs, final_state = self.forward_rnn(inputs, initial_state)
        if lengths is not None:
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=seq_len)
        return outputs, final_state


class RnnLmEncoder(nn.Module):
    """Stacked left-to-right recurrent layers of `hidden_size` units, with locked dropout between them."""

    def __init__(self, config: RnnLmConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            RnnLmLayer(
                config.cell_type,
                config.embedding_size if i == 0 else config.hidden_size,
                config.hidden_size,
                config.weight_dropout,
            )
            for i in range(config.num_hidden_layers)
        )
        self.hidden_dropout = config.hidden_dropout

    def forward(
        self, inputs: torch.Tensor, initial_states: list[RecurrentState] | None, lengths: torch.Tensor | None
    ) -> tuple[tuple[torch.Tensor, ...], list[RecurrentState]]:
        """Run every layer over `inputs` `(batch, seq_len, embedding_size)` (real tokens first in each row, `lengths`
        as for `RnnLmLayer`), from `initial_states` (one per layer; zeros when None).

        Returns every layer's outputs `(batch, seq_len, hidden_size)` (before dropout) and every layer's state after
        each row's last real token.
        """
        layer_outputs, final_states = [], []
        layer_inputs = inputs
        for i, layer in enumerate(self.layers):
            if i > 0:
                layer_inputs = locked_dropout(layer_inputs, self.hidden_dropout, self.training)
            initial_state = None if initial_states is None else initial_states[i]
            layer_inputs, final_state = layer(layer_inputs, initial_state, lengths)
            layer_outputs.append(layer_inputs)
            final_states.append(final_state)
        return tuple(layer_outputs), final_states


class RnnLmOutputLayer(nn.Linear):
    """The full softmax's output layer (last-layer features -> vocabulary logits).

    Its own class so that `_init_weights` gives it the embeddings' normal initialisation rather than Xavier's: an
    untied layer then starts at the scale a tied one has (Xavier's scale for a `(vocab, size)` matrix is tiny, and the
    encoder-decoder family found that it stalls Adam training near the unigram loss).
    """


class AdaptiveSoftmaxCluster(nn.Module):
    """The tokens of one adaptive-softmax cluster: an optional bias-free projection of the input, then a linear layer
    whose rows are the cluster's token vectors (`weight`, or rows of the embedding matrix when tied) and `bias`."""

    def __init__(self, input_size: int, num_tokens: int, projection_size: int | None, tied: bool):
        super().__init__()
        self.projection = None if projection_size is None else nn.Linear(input_size, projection_size, bias=False)
        vector_size = input_size if projection_size is None else projection_size
        self.weight = None if tied else nn.Parameter(torch.empty(num_tokens, vector_size))
        self.bias = nn.Parameter(torch.zeros(num_tokens))

    def forward(self, hidden: torch.Tensor, token_vectors: torch.Tensor | None) -> torch.Tensor:
        """Logits `(..., num_tokens)` of the cluster's tokens from `hidden` `(..., input_size)`; `token_vectors`
        `(num_tokens, vector_size)` are the tied token vectors (None when the cluster has its own `weight`)."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        return nn.functional.linear(hidden, token_vectors if self.weight is None else self.weight, self.bias)


class RnnLmAdaptiveSoftmax(nn.Module):
    """Adaptive softmax (Grave et al., 2017) over the tokens' frequency ranks (`config.token_order`).

    The head scores the `adaptive_cutoffs[0]` most frequent tokens plus one logit per tail cluster (`cluster_logits`);
    tail cluster `i` scores its tokens (ranks `[c_i, c_{i+1})`) after a projection of the input. Probabilities are
    exact and normalised: `log p(w) = log p_head(cluster(w)) + log p_tail(w | cluster(w))` for a tail token, and the
    head's log-probability for a head token. `nll` computes the head for every token and each tail only for the tokens
    that fall in it (the speed-up); `log_probs` computes the whole vocabulary (generation, scoring).

    Tied (`config.tie_word_embeddings`), the token vectors of the head and of every tail are rows of the input
    embedding matrix, passed to each call, and every tail projects with a `(size, size)` matrix. Untied, the clusters
    own their token vectors and tail `i` (from 1) projects to `size // 4 ** i` dimensions, as
    `torch.nn.AdaptiveLogSoftmaxWithLoss` does. Every cluster has its own token biases.
    """

    def __init__(self, config: RnnLmConfig, input_size: int):
        super().__init__()
        tied = config.tie_word_embeddings
        self.vocab_size = config.vocab_size
        self.cutoffs = list(config.adaptive_cutoffs)
        self.boundaries = [0, *self.cutoffs, config.vocab_size]
        self.token_order = config.token_order
        self.cluster_logits = nn.Linear(input_size, len(self.cutoffs))
        tail_sizes = [
            input_size if tied else max(1, input_size // 4**tail) for tail in range(1, len(self.boundaries) - 1)
        ]
        self.clusters = nn.ModuleList(
            AdaptiveSoftmaxCluster(input_size, end - start, projection_size, tied)
            for start, end, projection_size in zip(self.boundaries, self.boundaries[1:], [None, *tail_sizes])
        )
        # Per device: `(rank_to_id, id_to_rank, cutoffs)` as tensors (see `ranks`).
        self._rank_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def ranks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The token id of every rank `(vocab,)`, the rank of every token id `(vocab,)` and the cutoffs `(tails,)`."""
        if device not in self._rank_cache:
            if self.token_order is None:
                rank_to_id = torch.arange(self.vocab_size, device=device)
            else:
                rank_to_id = torch.tensor(self.token_order, dtype=torch.long, device=device)
            id_to_rank = torch.empty_like(rank_to_id)
            id_to_rank[rank_to_id] = torch.arange(self.vocab_size, device=device)
            cutoffs = torch.tensor(self.cutoffs, dtype=torch.long, device=device)
            self._rank_cache[device] = (rank_to_id, id_to_rank, cutoffs)
        return self._rank_cache[device]

    def cluster_scores(
        self, cluster: int, hidden: torch.Tensor, embedding_weight: torch.Tensor | None, rank_to_id: torch.Tensor
    ) -> torch.Tensor:
        """Logits `(..., cluster_size)` of the tokens of `cluster` (0: the head's tokens, without the tail logits)."""
        token_vectors = None
        if embedding_weight is not None:
            token_ids = rank_to_id[self.boundaries[cluster] : self.boundaries[cluster + 1]]
            token_vectors = embedding_weight.index_select(0, token_ids)
        return self.clusters[cluster](hidden, token_vectors)

    def head_log_probs(
        self, hidden: torch.Tensor, embedding_weight: torch.Tensor | None, rank_to_id: torch.Tensor
    ) -> torch.Tensor:
        """The head's log-probabilities `(..., cutoffs[0] + tails)`: its tokens, then one per tail cluster."""
        head_logits = self.cluster_scores(0, hidden, embedding_weight, rank_to_id)
        return torch.log_softmax(torch.cat([head_logits, self.cluster_logits(hidden)], dim=-1), dim=-1)

    def log_probs(self, hidden: torch.Tensor, embedding_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised log-probabilities `(..., vocab_size)` of every token, in token id order, from `hidden`
        `(..., input_size)`; `embedding_weight` is the input embedding matrix when tied (else None)."""
        rank_to_id, id_to_rank, _ = self.ranks(hidden.device)
        head = self.head_log_probs(hidden, embedding_weight, rank_to_id)
        shortlist = self.cutoffs[0]
        by_rank = [head[..., :shortlist]]
        for tail in range(1, len(self.clusters)):
            tail_log_probs = torch.log_softmax(self.cluster_scores(tail, hidden, embedding_weight, rank_to_id), dim=-1)
            by_rank.append(head[..., shortlist + tail - 1 : shortlist + tail] + tail_log_probs)
        return torch.cat(by_rank, dim=-1).index_select(-1, id_to_rank)

    def add_rarest_tokens(self, token_ids: list[int], mean_resizing: bool, std: float) -> None:
        """Append new token ids (`vocab_size`, `vocab_size + 1`, ...) to the last tail cluster as its rarest tokens.
        Their biases, and their own token vectors when untied, start at the mean of the cluster's (`mean_resizing`)
        or at zero / normal with `std`. The head and the other clusters do not change."""
        last = self.clusters[-1]
        with torch.no_grad():
            bias = last.bias.mean() if mean_resizing else 0.0
            last.bias = nn.Parameter(torch.cat([last.bias, last.bias.new_full((len(token_ids),), float(bias))]))
            if last.weight is not None:
                if mean_resizing:
                    rows = last.weight.mean(dim=0, keepdim=True).expand(len(token_ids), -1)
                else:
                    rows = last.weight.new_empty(len(token_ids), last.weight.shape[1]).normal_(std=std)
                last.weight = nn.Parameter(torch.cat([last.weight, rows]))
        self.vocab_size += len(token_ids)
        self.boundaries[-1] = self.vocab_size
        if self.token_order is not None:
            self.token_order = [*self.token_order, *token_ids]
        self._rank_cache.clear()

    def nll(
        self, hidden: torch.Tensor, targets: torch.Tensor, embedding_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Negative log-likelihood `(n,)` of the token ids `targets` `(n,)` given `hidden` `(n, input_size)`, computing
        each tail cluster only for the targets in it; `embedding_weight` as for `log_probs`."""
        rank_to_id, id_to_rank, cutoffs = self.ranks(hidden.device)
        target_ranks = id_to_rank[targets]
        clusters = torch.bucketize(target_ranks, cutoffs, right=True)  # 0: the head, i: tail cluster i
        shortlist = self.cutoffs[0]
        head_targets = torch.where(clusters == 0, target_ranks, shortlist + clusters - 1)
        head = self.head_log_probs(hidden, embedding_weight, rank_to_id)
        nll = -head.gather(1, head_targets.unsqueeze(1)).squeeze(1)
        for tail in range(1, len(self.clusters)):
            rows = (clusters == tail).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            scores = self.cluster_scores(tail, hidden.index_select(0, rows), embedding_weight, rank_to_id)
            in_tail = (target_ranks.index_select(0, rows) - self.boundaries[tail]).unsqueeze(1)
            nll = nll.index_add(0, rows, -torch.log_softmax(scores, dim=-1).gather(1, in_tail).squeeze(1))
        return nll


# Copied from hf_rnn.models.rnn_classifier.modeling_rnn_classifier.SelfContainedSavingMixin
class SelfContainedSavingMixin:
    """`save_pretrained` that also writes what loading the folder without hf_rnn needs (this family's code files, an
    `auto_map` naming every Auto class, and `custom_pipelines`), and a `push_to_hub` that publishes an hf_rnn run
    (tokenizer, recipe, results, model card) as `hf-rnn push` does. The subclass names its `remote_*` values;
    `import hf_rnn` sets `run_saver` / `run_pusher` (`hf_rnn.hub`), which stay None when loaded as remote code."""

    remote_auto_map: dict[str, str] = {}
    remote_custom_pipelines: dict[str, dict] = {}
    remote_code_files: tuple[str, ...] = ()
    run_saver = None
    run_pusher = None

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        self.config.auto_map = dict(self.remote_auto_map)
        if self.remote_custom_pipelines:
            self.config.custom_pipelines = copy.deepcopy(self.remote_custom_pipelines)
        super().save_pretrained(save_directory, *args, **kwargs)
        if not kwargs.get("is_main_process", True):
            return
        code_folder = Path(sys.modules[type(self).__module__].__file__).parent
        for name in self.remote_code_files:
            shutil.copyfile(code_folder / name, Path(save_directory) / name)
        if self.run_saver is not None:
            self.run_saver(self, save_directory)

    def push_to_hub(self, repo_id: str, *args, **kwargs):
        url = None if self.run_pusher is None or args else self.run_pusher(self, repo_id, **kwargs)
        return url if url is not None else super().push_to_hub(repo_id, *args, **kwargs)


class RnnLmPreTrainedModel(SelfContainedSavingMixin, PreTrainedModel):
    """Base class of the language model family: its config, weight initialisation, and the code files and Auto
    classes a saved model ships as remote code."""

    config_class = RnnLmConfig
    base_model_prefix = "rnn"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True  # per recurrent layer (`RnnLmLayer`)
    _no_split_modules = ["RnnLmLayer"]
    remote_auto_map = {
        "AutoConfig": "configuration_rnn_lm.RnnLmConfig",
        "AutoModel": "modeling_rnn_lm.RnnLmModel",
        "AutoModelForCausalLM": "modeling_rnn_lm.RnnForCausalLM",
    }
    remote_code_files = ("configuration_rnn_lm.py", "modeling_rnn_lm.py")

    def _init_weights(self, module: nn.Module) -> None:
        """Normal embeddings (std `initializer_range`) with a zero padding row, and output token vectors at the same
        scale; Xavier for the other linear layers; Xavier input / orthogonal recurrent weights, LSTM forget bias 1;
        zero biases. Loaded parameters (`_is_hf_initialized`) are kept."""
        std = self.config.initializer_range
        if isinstance(module, RnnLmOutputLayer):
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, AdaptiveSoftmaxCluster):
            if module.weight is not None:
                init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.RNNBase):
            init_recurrent_weights(module)


class RnnLmModel(RnnLmPreTrainedModel):
    """The embeddings and the stacked recurrent layers of [`RnnForCausalLM`] (what `AutoModel` loads): returns the
    last layer's outputs and the recurrent state. Its parameters are named as [`RnnClassifierModel`]'s with
    `bidirectional=False`."""

    def __init__(self, config: RnnLmConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.encoder = RnnLmEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    @deprecate_kwarg("past_key_values", version="5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: RnnLmCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        """Read `input_ids` `(batch, seq_len)`, continuing from `cache` when given.

        `attention_mask` marks the real tokens (1) and padding (0), left or right; with a cache it may be longer than
        `input_ids` (generation passes the mask of every position so far) and its last `seq_len` columns are read.
        Padding never changes a row's state: each row's real tokens are run first, its state is taken after its last
        real token, and the outputs are put back at their positions (values at padding positions are meaningless). A
        row without any real token is read as one padding token.

        Returns `last_hidden_state` `(batch, seq_len, hidden_size)` (the last layer's outputs, before output dropout),
        the new `cache` when `use_cache` (default `config.use_cache`), and with `output_hidden_states` the embeddings
        (after dropout) and every layer's outputs, all at the input positions.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must have shape (batch, seq_len), got {tuple(input_ids.shape)}.")
        seq_len = input_ids.shape[1]
        lengths, restore = None, None
        if attention_mask is not None:
            if attention_mask.shape[1] < seq_len:
                raise ValueError(
                    f"`attention_mask` covers {attention_mask.shape[1]} positions, fewer than the {seq_len} of "
                    "`input_ids`."
                )
            new_positions = attention_mask[:, -seq_len:]
            row_lengths = new_positions.sum(dim=1)
            if not bool((row_lengths == seq_len).all()):
                order = valid_first_index(new_positions)
                input_ids = input_ids.gather(1, order)
                restore = order.argsort(dim=1)  # the inverse permutation puts outputs back
                lengths = row_lengths.clamp(min=1)

        embedded = self.embeddings(input_ids)
        if self.training and self.config.embedding_dropout > 0:
            embedded = drop_word_types(embedded, input_ids, self.config.vocab_size, self.config.embedding_dropout)
        embedded = locked_dropout(embedded, self.config.input_dropout, self.training)
        layer_outputs, final_states = self.encoder(embedded, None if cache is None else cache.layer_states, lengths)

        hidden_states = (embedded, *layer_outputs) if output_hidden_states else None
        last_hidden_state = layer_outputs[-1]
        if restore is not None:
            last_hidden_state = gather_time(last_hidden_state, restore)
            if hidden_states is not None:
                hidden_states = tuple(gather_time(states, restore) for states in hidden_states)
        seen_tokens = seq_len if cache is None else cache.seen_tokens + seq_len
        output = BaseModelOutputWithPast(
            last_hidden_state=last_hidden_state,
            cache=RnnLmCache(final_states, seen_tokens) if use_cache else None,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()


class RnnForCausalLM(RnnLmPreTrainedModel, GenerationMixin):
    """AWD-LSTM-style recurrent language model: [`RnnLmModel`], locked dropout, then a full or adaptive softmax tied
    to the embeddings (through a bias-free `output_projection` to `embedding_size` when tied and `hidden_size`
    differs). Computes the loss when `labels` are given and generates with `generate()` (greedy, sampling, beam
    search) and the `text-generation` pipeline."""

    def __init__(self, config: RnnLmConfig):
        super().__init__(config)
        self.rnn = RnnLmModel(config)
        tied = config.tie_word_embeddings
        output_size = config.embedding_size if tied else config.hidden_size
        self.output_projection = (
            nn.Linear(config.hidden_size, config.embedding_size, bias=False)
            if tied and config.hidden_size != config.embedding_size
            else None
        )
        full = config.softmax == "full"
        self.lm_head = RnnLmOutputLayer(output_size, config.vocab_size) if full else None
        self.adaptive_softmax = None if full else RnnLmAdaptiveSoftmax(config, output_size)
        # Only applied when `config.tie_word_embeddings` is True; the adaptive softmax reads the embedding matrix.
        self._tied_weights_keys = {"lm_head.weight": "rnn.embeddings.weight"} if full else {}
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The recurrent state is returned by `forward` as a `RnnLmCache`; `generate` must not build a DynamicCache.
        return False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.rnn.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.rnn.embeddings = value

    def get_output_embeddings(self) -> RnnLmOutputLayer | None:
        """The full softmax's output layer; None with the adaptive softmax (no single output matrix)."""
        return self.lm_head

    def set_output_embeddings(self, value: RnnLmOutputLayer) -> None:
        self.lm_head = value

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """`PreTrainedModel.resize_token_embeddings`, also for the adaptive softmax: added tokens join its last tail
        cluster as the rarest ones (`RnnLmAdaptiveSoftmax.add_rarest_tokens`). Shrinking an adaptive softmax's
        vocabulary is refused: the removed ids may sit in any cluster, whose cutoffs would all change."""
        old_size = self.config.vocab_size
        new_size = old_size if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            new_size = -(-new_size // pad_to_multiple_of) * pad_to_multiple_of
        if self.adaptive_softmax is not None and new_size < old_size:
            raise ValueError(
                f"cannot shrink the adaptive softmax's vocabulary from {old_size} to {new_size} tokens: its clusters "
                "(`adaptive_cutoffs`, `token_order`) are fixed by frequency rank; growing it is supported."
            )
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if self.adaptive_softmax is not None and embeddings.num_embeddings > old_size:
            added = list(range(old_size, embeddings.num_embeddings))
            self.adaptive_softmax.add_rarest_tokens(added, mean_resizing, self.config.initializer_range)
            if self.config.token_order is not None:
                self.config.token_order = self.adaptive_softmax.token_order
        return embeddings

    def tied_token_vectors(self) -> torch.Tensor | None:
        """The embedding matrix the adaptive softmax takes its token vectors from when tied, else None."""
        return self.rnn.embeddings.weight if self.config.tie_word_embeddings else None

    def output_scores(self, features: torch.Tensor) -> torch.Tensor:
        """Scores `(..., vocab_size)` in token id order from output features `(..., output_size)`: the logits of the
        full softmax, or the normalised log-probabilities of the adaptive one."""
        if self.lm_head is not None:
            return self.lm_head(features)
        return self.adaptive_softmax.log_probs(features, self.tied_token_vectors())

    @deprecate_kwarg("past_key_values", version="5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: RnnLmCache | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """Read `input_ids` `(batch, seq_len)` (continuing from `cache`; `attention_mask` as for [`RnnLmModel`]) and
        score the next token at every position.

        `labels` follow the transformers causal-LM convention, `(batch, seq_len)` shifted inside the model (position
        `t` predicts `labels[:, t + 1]`), -100 for no loss; `(batch, seq_len + 1)` labels also carry the token after
        the window, so that every `labels[:, 1:]` is a target (streamed training loses no position between windows).
        The loss is the mean negative log-likelihood of the targets, plus AR and TAR in training mode only: in
        evaluation mode it is the pure NLL (its exponential is the perplexity).

        `logits` `(batch, kept, vocab_size)`: the full softmax's logits, or the adaptive softmax's normalised
        log-probabilities. With the adaptive softmax and `labels` they are None (scoring the whole vocabulary would
        undo its saving); the loss then computes each tail cluster only for its own targets. `logits_to_keep` keeps
        the last positions only (0: all; `generate` asks for 1); with `labels` every position is kept.
        Returns the new `cache` when `use_cache` (default `config.use_cache`) and `hidden_states` as [`RnnLmModel`].
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.rnn(
            input_ids,
            attention_mask=attention_mask,
            cache=cache,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        states = outputs.last_hidden_state
        dropped = locked_dropout(states, self.config.output_dropout, self.training)
        features = dropped if self.output_projection is None else self.output_projection(dropped)

        logits = None
        if labels is None or self.lm_head is not None:
            logits = self.output_scores(features if labels is not None else features[:, -logits_to_keep:])
        loss = None
        if labels is not None:
            loss = self.language_modeling_loss(features, logits, labels.to(features.device))
            if self.training:
                mask = None if attention_mask is None else attention_mask[:, -states.shape[1] :].bool()
                loss = loss + self.activation_penalty(states, dropped, mask)

        output = CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states
        )
        return output if return_dict else output.to_tuple()

    def language_modeling_loss(
        self, features: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor
    ) -> torch.Tensor:
        """Mean negative log-likelihood of the targets `labels[:, 1:]` (-100: none; 0 when there is none), predicted
        from `features` `(batch, seq_len, output_size)` (full softmax: from its `logits`)."""
        batch_size, seq_len = features.shape[:2]
        if labels.shape[0] != batch_size or labels.shape[1] not in (seq_len, seq_len + 1):
            raise ValueError(
                f"`labels` must have shape ({batch_size}, {seq_len}) or ({batch_size}, {seq_len + 1}) for `input_ids` "
                f"of shape ({batch_size}, {seq_len}), got {tuple(labels.shape)}."
            )
        targets = labels[:, 1:]
        predicting = targets.shape[1]  # the positions that have a target: all, or all but the last
        valid = targets != -100
        if self.lm_head is not None:
            nll = nn.functional.cross_entropy(
                logits[:, :predicting].flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
            )
        else:
            hidden = features[:, :predicting][valid]
            nll = self.adaptive_softmax.nll(hidden, targets[valid], self.tied_token_vectors()).sum()
        return nll / valid.sum().clamp(min=1)

    def activation_penalty(
        self, states: torch.Tensor, dropped: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """AR + TAR over the real positions (`mask` `(batch, seq_len)`, None: all): `alpha * mean(dropped ** 2)` on
        the last layer's outputs after output dropout, `beta * mean((h_t - h_{t-1}) ** 2)` on them before it."""
        alpha = self.config.activation_regularization
        beta = self.config.temporal_activation_regularization
        penalty = states.new_zeros(())
        if alpha > 0:
            penalty = penalty + alpha * masked_mean(dropped.pow(2), mask)
        if beta > 0 and states.shape[1] > 1:
            pairs = None if mask is None else mask[:, 1:] & mask[:, :-1]
            penalty = penalty + beta * masked_mean((states[:, 1:] - states[:, :-1]).pow(2), pairs)
        return penalty


__all__ = ["RnnForCausalLM", "RnnLmCache", "RnnLmModel", "RnnLmPreTrainedModel"]
