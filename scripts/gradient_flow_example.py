"""Gradient flow through time for fresh RNN, LSTM and GRU classifiers on 16 IMDB reviews.

Writes docs/gradient_flow_example.png and docs/gradient_flow_example.json (or the paths given) and prints
the ratio of the gradient norm at the first token to that at each review's last token.

    python scripts/gradient_flow_example.py --data /work/shared/data/imdb/train.parquet
"""

import argparse
from pathlib import Path

import pandas as pd
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from hf_rnn import RnnForSequenceClassification
from hf_rnn.lab.diagnostics import compare_gradient_flow, fresh_classifier_configs, gate_activity, write_json
from hf_rnn.plotting import plot_gate_activity, plot_gradient_flow


def word_level_tokenizer(texts: list[str], vocab_size: int = 20000) -> Tokenizer:
    """Lower-cased whitespace/punctuation words; id 0 is `[PAD]`, id 1 `[UNK]`."""
    tokenizer = Tokenizer(WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace("<br />", " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, WordLevelTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"]))
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/imdb/train.parquet")
    parser.add_argument("--output", default="docs/gradient_flow_example.png")
    parser.add_argument("--num-reviews", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gates-output", default=None, help="optional PNG of LSTM gate activity")
    args = parser.parse_args()
    torch.set_num_threads(1)

    reviews = pd.read_parquet(args.data, columns=["text", "label"]).sample(n=2000, random_state=args.seed)
    tokenizer = word_level_tokenizer(reviews["text"].tolist())
    tokenizer.enable_truncation(args.max_length)
    # Reviews that fill the whole window, so that every row's last token sits at the same position and
    # the per-position curve is not a mixture of different distances from the loss.
    tokenizer.no_padding()
    long_enough = [
        len(encoding.ids) >= args.max_length for encoding in tokenizer.encode_batch(reviews["text"].tolist())
    ]
    sample = reviews[long_enough].iloc[: args.num_reviews]
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(sample["text"].tolist())
    batch = {
        "input_ids": torch.tensor([encoding.ids for encoding in encodings]),
        "attention_mask": torch.tensor([encoding.attention_mask for encoding in encodings]),
        "labels": torch.tensor(sample["label"].tolist()),
    }
    lengths = batch["attention_mask"].sum(1)
    print(
        f"vocab {tokenizer.get_vocab_size()}, batch {tuple(batch['input_ids'].shape)}, lengths {lengths.min()}..{lengths.max()}"
    )

    configs = fresh_classifier_configs(tokenizer.get_vocab_size(), embedding_size=64, hidden_size=64)
    results = compare_gradient_flow(configs, batch, max_grad_norm=1.0, seed=args.seed)
    output = Path(args.output)
    plot_gradient_flow(
        results,
        output,
        title=f"‖∂L/∂x_t‖ at initialisation, {args.num_reviews} IMDB reviews truncated to {args.max_length} tokens, "
        "unidirectional, last-state pooling, hidden 64",
    )
    write_json(results, output.with_suffix(".json"))
    for label, result in results.items():
        norms = result["grad_norm_per_step"]
        print(
            f"{label:5s} loss {result['loss']:.3f}  |g_0| {norms[0]:.3g}  |g_last position| {norms[-1]:.3g}  "
            f"first/own-last ratio {result['first_to_last_ratio']}  param grad norm {result['parameter_grad_norm']:.3g} "
            f"-> clipped {result['clipped_parameter_grad_norm']:.3g}"
        )
    # float32 underflows to exactly 0 for very small gradients; float64 shows how small they are.
    for label, config in configs.items():
        torch.manual_seed(args.seed)
        model = RnnForSequenceClassification(config).double()
        result = compare_gradient_flow({label: model}, batch)[label]
        print(f"{label:5s} float64: |g_0| {result['grad_norm_per_step'][0]:.3g}  ratio {result['first_to_last_ratio']}")

    if args.gates_output:
        torch.manual_seed(args.seed)
        model = RnnForSequenceClassification(configs["lstm"])
        first = {name: value[:1, :60] for name, value in batch.items() if name != "labels"}
        activity = gate_activity(model, first["input_ids"], first["attention_mask"])
        plot_gate_activity(activity, encodings[0].tokens[:60], args.gates_output, value_range=None)


if __name__ == "__main__":
    main()
