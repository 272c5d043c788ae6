"""The learning stall of issue 12 in seconds: a dictionary 'translation' in a 4,000-id joint vocabulary.

Source words are ids 2000 + w, targets ids w (Zipf-distributed, 30 words), so almost every output row is never a
target, as a de-en joint BPE vocabulary has its German-only tokens. Untied output layer, Adam 3e-3, batch 32.

    python benchmarks/learning_gap/joint_vocabulary_toy.py STEPS VOCAB HIDDEN LR VARIANT [VARIANT ...]

VARIANT joins: `bahdanau` or `luong` (attention path), `tgt` (output layer over the target ids only),
`xavier` (Xavier-initialised output layer, the old default). Prints the token accuracy on 256 held-out sentences.
"""

import sys
import time

import torch

from hf_rnn import RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration

PAD, BOS, EOS, WORDS = 0, 1, 2, 30


def batch(size: int, vocab: int, generator: torch.Generator):
    frequencies = 1.0 / torch.arange(1, WORDS + 1, dtype=torch.float)
    lengths = torch.randint(3, 9, (size,), generator=generator)
    input_ids, labels = torch.full((size, 8), PAD), torch.full((size, 9), -100)
    for row, length in enumerate(lengths.tolist()):
        words = 3 + torch.multinomial(frequencies, length, replacement=True, generator=generator)
        input_ids[row, :length] = words + vocab // 2 - 3
        labels[row, :length] = words
        labels[row, length] = EOS
    return input_ids, (input_ids != PAD).long(), labels


def run(variant: str, steps: int, vocab: int, hidden: int, lr: float) -> None:
    luong = "luong" in variant
    config = RnnSeq2SeqConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        embedding_size=hidden,
        attention_type="luong_general" if luong else "bahdanau",
        input_feeding=not luong,
        tie_word_embeddings=False,
        embedding_dropout=0.0,
        output_dropout=0.0,
        rnn_dropout=0.0,
        label_smoothing=0.0,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=BOS,
        target_token_ids=list(range(WORDS + 3)) if "tgt" in variant else None,
    )
    torch.manual_seed(0)
    model = RnnSeq2SeqForConditionalGeneration(config)
    if "xavier" in variant:
        torch.nn.init.xavier_uniform_(model.decoder.output_projection.weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(steps):
        input_ids, attention_mask, labels = batch(32, vocab, generator)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    input_ids, attention_mask, labels = batch(256, vocab, torch.Generator().manual_seed(1))
    with torch.no_grad():
        output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    scored = labels != -100
    accuracy = (output.logits.argmax(-1) == labels)[scored].float().mean().item()
    print(
        f"{variant:20s} steps {steps} V {vocab} H {hidden} lr {lr} loss {output.loss.item():.3f} "
        f"acc {accuracy:.3f} {time.perf_counter() - started:.1f}s",
        flush=True,
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    steps, vocab, hidden, lr = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    for variant in sys.argv[5:]:
        run(variant, steps, vocab, hidden, lr)
