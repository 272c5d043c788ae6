"""The naive references the benchmark times our paths against, written the way tutorials write them: a padded and a
`PackedSequence` bidirectional LSTM classifier, a tutorial encoder-decoder (attention re-projected over every source
position at every step, a Python loop, teacher forcing) and per-sentence greedy decoding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

if TYPE_CHECKING:
    from .benchmark import ClassifierBatch, TranslationBatch


class PaddedReferenceClassifier(nn.Module):
    """Tutorial-style BiLSTM classifier: one `nn.LSTM(bidirectional=True)` over the whole padded batch.

    Padding takes part in the recurrence and in the mean+max pooling (no mask), as in most tutorials; the model
    size (embedding, hidden, pooling, head) is ours, so only the way sequences reach the kernel differs.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, num_labels: int, pad_id: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        self.lstm = nn.LSTM(embedding_size, hidden_size, batch_first=True, bidirectional=True)
        self.embedding_dropout = nn.Dropout(0.4)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(4 * hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(self.embedding_dropout(self.embedding(input_ids)))
        pooled = torch.cat([outputs.mean(dim=1), outputs.amax(dim=1)], dim=-1)
        return self.fc(self.dropout(pooled))


class PackedReferenceClassifier(PaddedReferenceClassifier):
    """The `PackedSequence` approach: pack, run the bidirectional LSTM, unpack, pool over real tokens only.

    This computes exactly the function of our classifier (same weights give the same loss).
    """

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding_dropout(self.embedding(input_ids))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, _ = self.lstm(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True)
        mask = (torch.arange(outputs.shape[1]) < lengths.unsqueeze(1)).unsqueeze(-1)
        mean = (outputs * mask).sum(1) / mask.sum(1)
        maximum = outputs.masked_fill(~mask, torch.finfo(outputs.dtype).min).amax(dim=1)
        return self.fc(self.dropout(torch.cat([mean, maximum], dim=-1)))


def copy_classifier_weights(reference: PaddedReferenceClassifier, ours: nn.Module) -> None:
    """Load our `RnnForSequenceClassification` weights into a reference (`_reverse` = our backward RNN)."""
    layer = ours.rnn.encoder.layers[0]
    with torch.no_grad():
        reference.embedding.weight.copy_(ours.rnn.embeddings.weight)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(reference.lstm, name).copy_(getattr(layer.forward_rnn, name))
            getattr(reference.lstm, f"{name}_reverse").copy_(getattr(layer.backward_rnn, name))
        reference.fc.weight.copy_(ours.classifier.weight)
        reference.fc.bias.copy_(ours.classifier.bias)


def padded_reference_loss(model: nn.Module, batch: ClassifierBatch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch.input_ids), batch.labels)


def packed_reference_loss(model: nn.Module, batch: ClassifierBatch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch.input_ids, batch.lengths), batch.labels)


class TutorialEncoder(nn.Module):
    """Time-major BiLSTM encoder over a packed batch, with `tanh(fc([h_fwd; h_bwd]))` as the decoder's start."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int, dropout: float):
        super().__init__()
        self.embedding = embedding
        self.rnn = nn.LSTM(embedding.embedding_dim, hidden_size, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.dropout(self.embedding(src))
        packed_embedded = pack_padded_sequence(embedded, src_len.cpu(), enforce_sorted=False)
        packed_outputs, (hidden, _) = self.rnn(packed_embedded)
        outputs, _ = pad_packed_sequence(packed_outputs)
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        return outputs, hidden


class TutorialAttention(nn.Module):
    """Additive attention as tutorials write it: repeat the decoder state over the source, concatenate it with every
    encoder output and project the concatenation, at every decoder step."""

    def __init__(self, encoder_size: int, decoder_size: int):
        super().__init__()
        self.attn = nn.Linear(decoder_size + encoder_size, decoder_size, bias=False)
        self.v = nn.Linear(decoder_size, 1, bias=False)

    def forward(self, hidden: torch.Tensor, encoder_outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        src_len = encoder_outputs.shape[0]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        attention = attention.masked_fill(mask == 0, -1e10)
        return torch.softmax(attention, dim=1)


class TutorialDecoder(nn.Module):
    """One target step per call: embed, attend with the previous state, LSTM step on `[embedding; previous
    attentional vector; context]` (input feeding), attentional vector `tanh(W [s; context])`, output layer."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int, dropout: float, output_dropout: float):
        super().__init__()
        embedding_size = embedding.embedding_dim
        self.embedding = embedding
        self.attention = TutorialAttention(2 * hidden_size, hidden_size)
        self.rnn = nn.LSTM(embedding_size + embedding_size + 2 * hidden_size, hidden_size)
        self.attentional_layer = nn.Linear(hidden_size + 2 * hidden_size, embedding_size, bias=False)
        self.fc_out = nn.Linear(embedding_size, embedding.num_embeddings, bias=False)
        self.fc_out.weight = embedding.weight
        self.dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(output_dropout)

    def forward(self, input, hidden, cell, attentional, encoder_outputs, mask):
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        a = self.attention(hidden, encoder_outputs, mask).unsqueeze(1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a, encoder_outputs).permute(1, 0, 2)
        rnn_input = torch.cat((embedded, attentional.unsqueeze(0), weighted), dim=2)
        output, (hidden, cell) = self.rnn(rnn_input, (hidden.unsqueeze(0), cell.unsqueeze(0)))
        attentional = torch.tanh(self.attentional_layer(torch.cat((output.squeeze(0), weighted.squeeze(0)), dim=1)))
        prediction = self.fc_out(self.output_dropout(attentional))
        return prediction, hidden.squeeze(0), cell.squeeze(0), attentional


class TutorialSeq2Seq(nn.Module):
    """The reference encoder-decoder, written the way the well-known PyTorch seq2seq tutorials write it (time-major
    tensors, packed encoder, a Python loop over target steps with a teacher-forcing coin flip per step), with our
    model's sizes and math: with the coin flip off, it computes our Bahdanau + input-feeding model exactly."""

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, pad_id: int, label_smoothing: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        self.encoder = TutorialEncoder(self.embedding, hidden_size, dropout=0.3)
        self.decoder = TutorialDecoder(self.embedding, hidden_size, dropout=0.3, output_dropout=0.3)
        self.pad_id = pad_id
        self.criterion = nn.CrossEntropyLoss(ignore_index=pad_id, label_smoothing=label_smoothing)

    def forward(self, src, src_len, trg, teacher_forcing_ratio: float, coin: random.Random) -> torch.Tensor:
        """`src` `(src_len, batch)`, `trg` `(trg_len, batch)` starting with the start token; returns the loss."""
        trg_len, batch_size = trg.shape
        trg_vocab_size = self.decoder.fc_out.out_features
        outputs = torch.zeros(trg_len, batch_size, trg_vocab_size)
        encoder_outputs, hidden = self.encoder(src, src_len)
        cell = hidden
        attentional = torch.zeros(batch_size, self.decoder.attentional_layer.out_features)
        mask = (src != self.pad_id).permute(1, 0)
        input = trg[0, :]
        for t in range(1, trg_len):
            output, hidden, cell, attentional = self.decoder(input, hidden, cell, attentional, encoder_outputs, mask)
            outputs[t] = output
            teacher_force = coin.random() < teacher_forcing_ratio
            top1 = output.argmax(1)
            input = trg[t] if teacher_force else top1
        output_dim = outputs.shape[-1]
        return self.criterion(outputs[1:].view(-1, output_dim), trg[1:].reshape(-1))


def copy_seq2seq_weights(reference: TutorialSeq2Seq, ours: nn.Module) -> None:
    """Load our Bahdanau + input-feeding `RnnSeq2SeqForConditionalGeneration` into the reference."""
    encoder_layer, decoder = ours.encoder.rnn.layers[0], ours.decoder
    with torch.no_grad():
        reference.embedding.weight.copy_(ours.encoder.embeddings.weight)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(reference.encoder.rnn, name).copy_(getattr(encoder_layer.forward_rnn, name))
            getattr(reference.encoder.rnn, f"{name}_reverse").copy_(getattr(encoder_layer.backward_rnn, name))
            getattr(reference.decoder.rnn, name).copy_(getattr(decoder.rnn, name))
        reference.encoder.fc.load_state_dict(decoder.bridge_layer.state_dict())
        attention = decoder.attention
        reference.decoder.attention.attn.weight.copy_(
            torch.cat([attention.query_layer.weight, attention.key_layer.weight], dim=1)
        )
        reference.decoder.attention.v.weight.copy_(attention.energy_layer.weight)
        reference.decoder.attentional_layer.weight.copy_(decoder.attentional_layer.weight)


def tutorial_inputs(batch: TranslationBatch, pad_id: int, start_id: int) -> tuple[torch.Tensor, ...]:
    """Time-major `src`, `src_len` and `trg` (start token first, pad for -100) from one of our batches."""
    labels = batch.labels.masked_fill(batch.labels == -100, pad_id)
    trg = torch.cat([labels.new_full((labels.shape[0], 1), start_id), labels], dim=1)
    return batch.input_ids.t().contiguous(), batch.attention_mask.sum(1), trg.t().contiguous()


def trim_after_eos(tokens: Sequence[int], eos_id: int) -> list[int]:
    """The tokens up to and including the first EOS (all of them when there is none)."""
    tokens = list(tokens)
    return tokens[: tokens.index(eos_id) + 1] if eos_id in tokens else tokens


@torch.inference_mode()
def per_sentence_greedy(model: nn.Module, sources: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """Greedy decoding as tutorials write it: one sentence at a time, encode it, then feed the last token to the
    decoder (continuing from its recurrent state) and take the argmax until EOS."""
    eos_id, start_id = model.config.eos_token_id, model.config.decoder_start_token_id
    outputs = []
    for source in sources:
        src_tensor = torch.tensor([source], dtype=torch.long)
        encoder_outputs = model.get_encoder()(src_tensor)
        trg_indexes, cache = [start_id], None
        for _ in range(max_new_tokens):
            trg_tensor = torch.tensor([[trg_indexes[-1]]], dtype=torch.long)
            output = model(encoder_outputs=encoder_outputs, decoder_input_ids=trg_tensor, cache=cache, use_cache=True)
            cache = output.cache
            pred_token = int(output.logits[0, -1].argmax())
            trg_indexes.append(pred_token)
            if pred_token == eos_id:
                break
        outputs.append(trg_indexes)
    return outputs
