"""The demo page of hf_rnn models: one tab per model, built by the tab builder of its task, and the prediction
functions behind the tabs.

This file imports only the standard library, numpy, torch, transformers, gradio and matplotlib, never hf_rnn:
`hf-rnn space` ships its text as a Hugging Face Space's `app.py` (plus a few lines naming the model), where hf_rnn
is not installed and the model loads as remote code (`trust_remote_code=True`). Pieces of hf_rnn it needs are
copied and marked `# Copied from ...` (tests/test_copies.py keeps them identical). `hf-rnn demo` builds the same page
from run folders (`hf_rnn.demo.build_demo`).
"""

import html
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
import torch
import transformers
from matplotlib.figure import Figure

MAX_BEAMS = 10
MAX_HYPOTHESES = 5
MAX_NEW_TOKENS = 200
MAX_CONTINUATIONS = 5
# A longer prompt is cut to its last tokens: the recurrent state carries the context, and reading 100k characters
# on every request would make the page slow for everyone else.
MAX_PROMPT_TOKENS = 1_000
PROMPT_SHOWN_CHARACTERS = 300  # the continuations show at most this much of the prompt before them
DECODINGS = ("greedy", "sampling", "beam search")
# The language-model tab's initial settings, which are also `generate_text`'s keyword arguments.
GENERATION_DEFAULTS = {
    "decoding": "sampling",
    "max_new_tokens": 40,
    "num_continuations": 3,
    "temperature": 1.0,
    "top_p": 0.9,
    "top_k": 0,
    "num_beams": 5,
    "seed": 0,
}
# A Space's app.py loads this model id instead of its own when the variable is set (a local folder works too).
SPACE_MODEL_VARIABLE = "HF_RNN_SPACE_MODEL"


@dataclass
class DemoModel:
    """A loaded model for one tab: the tab's title, the recipe task that picks its tab builder, model and tokenizer."""

    title: str
    task: str
    model: Any
    tokenizer: Any


@dataclass
class Classification:
    """A classifier's answer for one text.

    Args:
        scores: `{label: probability}`, summing to 1 (empty when there was nothing to classify).
        token_weights: `(token, share)` for every token read, special tokens included; the shares sum to 1.
        spans: the text read, cut at token boundaries, for `gr.HighlightedText`: each token's piece with its weight
            relative to the strongest token (0 to 1), the text between tokens with None.
        per_token: what the weights are: `"attention pooling"` or `"gradient x input"`.
        message: notes for the reader (truncation, unknown tokens, empty input); "" when there are none.
    """

    scores: dict[str, float] = field(default_factory=dict)
    token_weights: list[tuple[str, float]] = field(default_factory=list)
    spans: list[tuple[str, float | None]] = field(default_factory=list)
    per_token: str = ""
    message: str = ""


@dataclass
class Hypothesis:
    """One translation of an n-best list: `score` is `log_probability / length ** length_penalty` (beam search's
    ranking), `length` counts the generated tokens with `</s>`."""

    text: str
    score: float
    log_probability: float
    length: int


@dataclass
class Translation:
    """A translator's answer for one text: the n-best list (best first), and the cross-attention of the best
    hypothesis `(len(target_tokens), len(source_tokens))` (None for a model without attention)."""

    hypotheses: list[Hypothesis] = field(default_factory=list)
    source_tokens: list[str] = field(default_factory=list)
    target_tokens: list[str] = field(default_factory=list)
    attention: np.ndarray | None = None
    message: str = ""


@dataclass
class Continuation:
    """One continuation of a prompt.

    Args:
        text: the generated text as it follows the prompt (leading space included; without the final `</s>`).
        token_ids / tokens: the generated tokens (ids, and the tokenizer's strings), `</s>` included when the model
            ended the text.
        pieces: the text each token adds after the prompt and the tokens before it (`" </s>"` for the end of text).
        probabilities: each token's probability under the model given everything before it (the model's own
            distribution, before temperature, top-p or top-k).
        log_probability: the sum of the tokens' log-probabilities.
        ended: whether the model ended the text (its last token is `</s>`).
    """

    text: str
    token_ids: list[int]
    tokens: list[str]
    pieces: list[str]
    probabilities: list[float]
    log_probability: float
    ended: bool


@dataclass
class Generation:
    """A language model's answer for one prompt.

    Args:
        prompt: the prompt as the model read it (decoded from its tokens: normalised, lowercased by an uncased
            tokenizer, cut to its last `MAX_PROMPT_TOKENS` tokens); "" for the start of a text.
        continuations: greedy: one; sampling: the samples in the order drawn; beam search: the n-best list, best first.
        prompt_perplexity: exp of the mean negative log-likelihood of the prompt's tokens, each given the ones before
            it (from the start of a text, unless the prompt was cut); None without a token to score.
        prompt_tokens: the number of prompt tokens read.
        scored_tokens: the number of prompt tokens the perplexity is over (all of them, or all but the first of a
            prompt that was cut: its first token has nothing before it).
        seed: the seed sampling used (None for greedy and beam search).
        message: notes for the reader (empty or cut prompt, unknown tokens, settings adjusted); "" when there are none.
    """

    prompt: str = ""
    continuations: list[Continuation] = field(default_factory=list)
    prompt_perplexity: float | None = None
    prompt_tokens: int = 0
    scored_tokens: int = 0
    seed: int | None = None
    message: str = ""


# Copied from hf_rnn.tokenization.clean_text
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


# Copied from hf_rnn.tokenization.truncated_flags
def truncated_flags(encoded) -> list[bool]:
    """For a fast tokenizer's `BatchEncoding` made with `truncation=True`: which inputs lost tokens."""
    return [bool(encoding.overflowing) for encoding in encoded.encodings]


# Copied from hf_rnn.plotting.attention_figure
def attention_figure(weights: torch.Tensor | np.ndarray, source_tokens: list[str], target_tokens: list[str]) -> Figure:
    """Heatmap of target (rows) x source (columns) attention weights `(tgt_len, src_len)` with the tokens on the
    axes."""
    weights = np.asarray(weights, dtype=np.float32)
    height = max(3.0, 0.32 * len(target_tokens) + 1.5)
    width = max(4.0, 0.32 * len(source_tokens) + 2.0)
    figure = Figure(figsize=(width, height), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source_tokens)), labels=source_tokens, rotation=90, fontsize=9)
    axes.set_yticks(range(len(target_tokens)), labels=target_tokens, fontsize=9)
    axes.set_xlabel("source token")
    axes.set_ylabel("generated target token")
    axes.set_title("Attention weights")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    figure.tight_layout()
    return figure


def input_notes(tokenizer, text: str, encoded) -> list[str]:
    """What the reader should know about how `text` was read: cut at `model_max_length`, unknown tokens."""
    notes = []
    if truncated_flags(encoded)[0]:
        notes.append(
            f"Only the first {tokenizer.model_max_length} tokens were read: the text ({len(text):,} characters) is "
            "longer than this model's input limit."
        )
    ids = encoded["input_ids"][0].tolist()
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    words = [token_id for token_id in ids if token_id not in special]
    unknown = sum(token_id == tokenizer.unk_token_id for token_id in words)
    if unknown:
        notes.append(
            f"{unknown} of {len(words)} tokens are unknown to this model's vocabulary ({tokenizer.unk_token}): it "
            "never saw these characters or words in training, so it is mostly guessing."
        )
    return notes


def highlighted_spans(
    text: str, tokens: list[str], offsets: list[tuple[int, int]], weights: list[float]
) -> list[tuple[str, float | None]]:
    """`text` cut at token boundaries: each token's piece of the text with its weight relative to the strongest
    token, the text between tokens with None; a special token (no piece of the text) appears by name."""
    strongest = max(weights, default=0.0) or 1.0
    spans: list[tuple[str, float | None]] = []
    position = 0
    for token, (start, end), weight in zip(tokens, offsets, weights):
        if start >= end:
            piece = f" {token}"
        else:
            if start > position:
                spans.append((text[position:start], None))
            piece, position = text[max(start, position) : end], max(end, position)
        spans.append((piece, round(weight / strongest, 3)))
    return spans


def classify(model, tokenizer, text: str | None) -> Classification:
    """Label probabilities of `text` and a weight per token.

    The per-token weights are the attention pooling's own weights when the model pools with attention
    (`pooling="attention"`); for every other pooling they are gradient x input: the L2 norm of each token's
    embedding times the gradient of the predicted label's logit with respect to it, as shares of their sum.
    """
    text = clean_text(text)
    if not text.strip():
        return Classification(message="Type a text to classify.")
    encoded = tokenizer([text], truncation=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = [tuple(pair) for pair in encoded.pop("offset_mapping")[0].tolist()]
    attention_pooling = getattr(model.config, "pooling", None) == "attention"
    embedded: list[torch.Tensor] = []
    hook = model.get_input_embeddings().register_forward_hook(lambda module, inputs, output: embedded.append(output))
    try:
        with torch.enable_grad():
            output = model(
                input_ids=encoded["input_ids"],
                attention_mask=encoded["attention_mask"],
                output_attentions=attention_pooling,
            )
            logits = output.logits[0].float()
            predicted = int(logits.argmax())
            if attention_pooling:
                weights = output.attentions[0][0, 0]
            else:
                (gradient,) = torch.autograd.grad(logits[predicted], embedded[0])
                weights = (gradient * embedded[0])[0].norm(dim=-1)
    finally:
        hook.remove()
    probabilities = logits.detach().softmax(-1).tolist()
    shares = (weights / weights.sum().clamp(min=1e-12)).detach().tolist()
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
    return Classification(
        scores={model.config.id2label[index]: probability for index, probability in enumerate(probabilities)},
        token_weights=list(zip(tokens, shares)),
        spans=highlighted_spans(text, tokens, offsets, shares),
        per_token="attention pooling" if attention_pooling else "gradient x input",
        message="\n\n".join(input_notes(tokenizer, text, encoded)),
    )


def generated_token_ids(sequences: torch.Tensor, eos_token_id: int) -> list[list[int]]:
    """Rows of generated ids `(rows, 1 + steps)`, each cut after its first `</s>` (start token kept)."""
    rows = []
    for row in sequences.tolist():
        end = row.index(eos_token_id, 1) + 1 if eos_token_id in row[1:] else len(row)
        rows.append(row[:end])
    return rows


def translate(model, tokenizer, text: str | None, num_beams: int = 5, length_penalty: float = 1.0) -> Translation:
    """The `min(num_beams, 5)` best translations of `text` by beam search, best first, and the attention of the best.

    Each hypothesis is scored again in one teacher-forced pass over all of them: its log-probability and the
    cross-attention the model paid while producing each of its tokens (identical to what it paid during the search).
    `max_new_tokens` is the model's `generation_config`'s.
    """
    text = clean_text(text)
    if not text.strip():
        return Translation(message="Type a sentence to translate.")
    num_beams = min(max(int(num_beams), 1), MAX_BEAMS)
    encoded = tokenizer([text], truncation=True, return_tensors="pt")
    settings = {"num_beams": num_beams, "num_return_sequences": min(num_beams, MAX_HYPOTHESES)}
    if num_beams > 1:
        settings["length_penalty"] = float(length_penalty)
    config = model.config
    with torch.inference_mode():
        sequences = model.generate(**encoded, **settings)
        rows = generated_token_ids(sequences, config.eos_token_id)
        width = max(len(row) for row in rows)
        targets = torch.tensor([row + [config.pad_token_id] * (width - len(row)) for row in rows])
        count = len(rows)
        output = model(
            input_ids=encoded["input_ids"].expand(count, -1),
            attention_mask=encoded["attention_mask"].expand(count, -1),
            decoder_input_ids=targets[:, :-1],
            output_attentions=True,
            use_cache=False,
        )
        token_log_probs = output.logits.float().log_softmax(-1).gather(-1, targets[:, 1:, None]).squeeze(-1)
    lengths = [len(row) - 1 for row in rows]
    log_probs = [float(token_log_probs[i, :length].sum()) for i, length in enumerate(lengths)]
    penalty = float(length_penalty)
    hypotheses = [
        Hypothesis(
            text=tokenizer.decode(row, skip_special_tokens=True).strip(),
            score=log_prob / max(length, 1) ** penalty,
            log_probability=log_prob,
            length=length,
        )
        for row, log_prob, length in zip(rows, log_probs, lengths)
    ]
    order = sorted(range(count), key=lambda i: -hypotheses[i].score)
    best = order[0]
    attention = None
    if output.cross_attentions:
        attention = output.cross_attentions[0][best, 0, : lengths[best]].float().numpy()
    notes = input_notes(tokenizer, text, encoded)
    if attention is None:
        notes.append("This model has no attention (attention_type: none): there is no heatmap to show.")
    return Translation(
        hypotheses=[hypotheses[i] for i in order],
        source_tokens=tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()),
        target_tokens=tokenizer.convert_ids_to_tokens(rows[best][1:]),
        attention=attention,
        message="\n\n".join(notes),
    )


def bounded(value: float | None, low: float, high: float, default: float) -> float:
    """`value` clipped to `[low, high]` (`default` for None or NaN: what a cleared or odd page field sends)."""
    if value is None or value != value:
        return default
    return min(max(float(value), low), high)


def generation_settings(
    decoding: str, count: int, temperature: float, top_p: float, top_k: int, num_beams: int
) -> tuple[dict[str, Any], list[str]]:
    """`generate`'s keyword arguments for a decoding method (one of `DECODINGS`) and `count` continuations, with
    notes on the settings that had to change (greedy has one continuation; beam search at most `num_beams`)."""
    notes = []
    if decoding == "greedy":
        if count > 1:
            notes.append("Greedy decoding has one continuation (the most probable token at every step).")
        return {"do_sample": False, "num_beams": 1}, notes
    if decoding == "sampling":
        return {
            "do_sample": True,
            "num_beams": 1,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "num_return_sequences": count,
        }, notes
    if count > num_beams:
        notes.append(f"Beam search with {num_beams} beams keeps {num_beams} continuations, not {count}.")
    return {"do_sample": False, "num_beams": num_beams, "num_return_sequences": min(count, num_beams)}, notes


def continuation_rows(sequences: torch.Tensor, context_length: int, eos_token_id: int) -> list[list[int]]:
    """The generated ids of each row of `generate`'s `(rows, context_length + steps)` output, each cut after its
    first `</s>` (which it keeps; the padding after it goes)."""
    rows = []
    for row in sequences[:, context_length:].tolist():
        rows.append(row[: row.index(eos_token_id) + 1] if eos_token_id in row else row)
    return rows


def token_pieces(tokenizer, context_ids: list[int], generated_ids: list[int]) -> list[str]:
    """The text each generated token adds to the decoded text before it: the difference between successive decodes,
    so that word pieces join and spaces fall where the tokenizer's decoder puts them; `</s>` appears by name.

    Only the context's last eight tokens are decoded with them: enough for the decoder to place a space or join a
    piece, and far cheaper than decoding a 1,000-token prompt once per generated token.
    """
    tail = context_ids[-8:]
    previous = tokenizer.decode(tail)
    pieces = []
    for end, token_id in enumerate(generated_ids, start=1):
        if token_id == tokenizer.eos_token_id:
            pieces.append(f" {tokenizer.eos_token}")
            continue
        current = tokenizer.decode(tail + generated_ids[:end])
        if current.startswith(previous):
            pieces.append(current[len(previous) :])
        else:  # a decoder that rewrote earlier text: fall back on the token itself
            pieces.append(" " + tokenizer.convert_ids_to_tokens(token_id))
        previous = current
    return pieces


def generate_text(
    model,
    tokenizer,
    prompt: str | None,
    decoding: str = "sampling",
    max_new_tokens: int = 40,
    num_continuations: int = 3,
    temperature: float = 1.0,
    top_p: float = 0.9,
    top_k: int = 0,
    num_beams: int = 5,
    seed: int | None = 0,
) -> Generation:
    """Continue `prompt` with a causal language model: greedy (one continuation), sampling (`num_continuations`
    samples, reproducible with `seed`; None draws one) or beam search (the `min(num_continuations, num_beams)` best).

    The prompt is read as the start of a text, after `</s>` (every training text followed one); an empty prompt
    generates from `</s>` alone. A prompt longer than `MAX_PROMPT_TOKENS` tokens is cut to its last ones, read as
    the middle of a text. The continuations are scored again with the model: one pass over the prompt (its
    perplexity, and the recurrent state after it), then one over all continuations from that state, giving each
    generated token's probability under the model.
    """
    prompt = clean_text(prompt)
    if decoding not in DECODINGS:
        return Generation(message=f"Choose a decoding method: {', '.join(DECODINGS)}.")
    # Prompts are encoded without special tokens: the tokenizer ends every text with `</s>`.
    encoded = tokenizer([prompt], add_special_tokens=False, return_tensors="pt", verbose=False)
    prompt_ids = encoded["input_ids"][0].tolist()
    notes = input_notes(tokenizer, prompt, encoded) if prompt_ids else []
    eos_token_id = tokenizer.eos_token_id
    if len(prompt_ids) > MAX_PROMPT_TOKENS:
        notes.insert(
            0,
            f"The prompt has {len(prompt_ids):,} tokens: only its last {MAX_PROMPT_TOKENS:,} were read, as the "
            "middle of a text.",
        )
        prompt_ids = prompt_ids[-MAX_PROMPT_TOKENS:]
        context_ids = prompt_ids
    else:
        context_ids = [eos_token_id, *prompt_ids]
    if not prompt_ids:
        notes.append("No prompt (or nothing the tokenizer reads in it): generated from the start of a text.")

    count = int(bounded(num_continuations, 1, MAX_CONTINUATIONS, 1))
    settings, setting_notes = generation_settings(
        decoding,
        count,
        temperature=bounded(temperature, 0.05, 2.0, 1.0),
        top_p=bounded(top_p, 0.05, 1.0, 1.0),
        top_k=int(bounded(top_k, 0, 200, 0)),
        num_beams=int(bounded(num_beams, 1, MAX_BEAMS, 1)),
    )
    notes += setting_notes
    settings["max_new_tokens"] = int(bounded(max_new_tokens, 1, MAX_NEW_TOKENS, GENERATION_DEFAULTS["max_new_tokens"]))
    if decoding != "sampling":
        seed = None
    elif seed is None or seed != seed:
        seed = random.randrange(2**32)
    else:
        seed = int(seed) % 2**32  # what torch.manual_seed takes, whatever the page sends

    context = torch.tensor([context_ids])
    with torch.inference_mode(), torch.random.fork_rng():  # the seed does not leak into the server's other work
        if seed is not None:
            torch.manual_seed(seed)
        sequences = model.generate(
            input_ids=context,
            attention_mask=torch.ones_like(context),
            pad_token_id=model.config.pad_token_id,
            eos_token_id=eos_token_id,
            **settings,
        )
        rows = continuation_rows(sequences, len(context_ids), eos_token_id)
        perplexity, cache = None, None
        if len(context_ids) > 1:
            # The labels are one longer than the input: the prompt's last token is scored too (`RnnForCausalLM`).
            read = model(input_ids=context[:, :-1], labels=context, use_cache=True)
            perplexity, cache = float(read.loss.exp()), read.cache  # inf, not an error, past 1e308
            cache.reorder_cache(torch.zeros(len(rows), dtype=torch.long))  # the state after the prompt, per row
        width = max(len(row) for row in rows)
        inputs = torch.tensor([[context_ids[-1], *row[:-1]] + [0] * (width - len(row)) for row in rows])
        targets = torch.tensor([row + [0] * (width - len(row)) for row in rows])
        new_positions = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        attention_mask = torch.cat([torch.ones(len(rows), len(context_ids) - 1, dtype=torch.long), new_positions], 1)
        output = model(input_ids=inputs, attention_mask=attention_mask, cache=cache, use_cache=False)
        log_probs = output.logits.float().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)

    continuations = []
    for index, row in enumerate(rows):
        row_log_probs = log_probs[index, : len(row)].tolist()
        pieces = token_pieces(tokenizer, context_ids, row)
        ended = row[-1] == eos_token_id
        continuations.append(
            Continuation(
                text="".join(pieces[:-1] if ended else pieces),
                token_ids=row,
                tokens=tokenizer.convert_ids_to_tokens(row),
                pieces=pieces,
                probabilities=[math.exp(value) for value in row_log_probs],
                log_probability=sum(row_log_probs),
                ended=ended,
            )
        )
    return Generation(
        prompt=tokenizer.decode(prompt_ids).lstrip(),  # a language model's decoder keeps a first word's space
        continuations=continuations,
        prompt_perplexity=perplexity,
        prompt_tokens=len(prompt_ids),
        scored_tokens=len(context_ids) - 1,
        seed=seed,
        message="\n\n".join(notes),
    )


CLASSIFIER_EXAMPLES = ["A wonderful, moving film with a superb cast.", "Dull and far too long; I left early."]
TRANSLATION_EXAMPLES = ["Ein Hund läuft über eine grüne Wiese.", "Zwei Männer spielen Fußball im Park."]
PROMPT_EXAMPLES = ["This movie was", "I have never seen a film that", "The acting"]
TOKEN_PROBABILITY_EXPLANATION = (
    "**Per token:** the probability the model gave each generated token of continuation 1, given the prompt and "
    "the tokens before it: its own distribution, before temperature, top-p and top-k reshape it for sampling. "
    "Darker is more probable; the table has the numbers for every continuation. `</s>` is the end of a text."
)
PER_TOKEN_EXPLANATIONS = {
    "attention pooling": "**Per token:** the attention pooling's weight on each token: how much of the vector the "
    "head classifies comes from that token's state (the model's own weighting). Colour is relative to the "
    "strongest token.",
    "gradient x input": "**Per token:** gradient × input saliency: the size (L2 norm) of each token's embedding "
    "times the gradient of the predicted label's logit with respect to it, from one backward pass. It shows the "
    "tokens the prediction is most sensitive to, for every pooling (this model does not pool with attention). "
    "Colour is relative to the strongest token.",
}


def classifier_tab(demo_model: DemoModel, name: str) -> None:
    """The controls of a classifier's tab (inside an open `gr.Tab`): text in, label scores and per-token weights out.
    `name` prefixes the elements' HTML ids."""
    attention_pooling = getattr(demo_model.model.config, "pooling", None) == "attention"
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=5, placeholder="Type a review…", elem_id=f"{name}-text")
            button = gr.Button("Classify", variant="primary", elem_id=f"{name}-submit")
            gr.Examples(CLASSIFIER_EXAMPLES, inputs=text)
        with gr.Column():
            label = gr.Label(label="Label and scores", elem_id=f"{name}-label")
            message = gr.Markdown(elem_id=f"{name}-message")
    tokens = gr.HighlightedText(label="Per token", show_legend=False, elem_id=f"{name}-tokens")
    gr.Markdown(PER_TOKEN_EXPLANATIONS["attention pooling" if attention_pooling else "gradient x input"])

    def run(text: str) -> tuple[dict[str, float] | None, list | None, str]:
        result = classify(demo_model.model, demo_model.tokenizer, text)
        return result.scores or None, result.spans or None, result.message

    for event in (button.click, text.submit):
        event(run, inputs=text, outputs=[label, tokens, message])


def translation_tab(demo_model: DemoModel, name: str) -> None:
    """The controls of a translator's tab (inside an open `gr.Tab`): source text, beam size and length penalty in;
    the best translation, the n-best list and the best one's attention heatmap out."""
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Source text", lines=3, placeholder="Ein Satz…", elem_id=f"{name}-text")
            num_beams = gr.Slider(1, MAX_BEAMS, value=5, step=1, label="Beam size", elem_id=f"{name}-beams")
            length_penalty = gr.Slider(
                0.0,
                2.0,
                value=1.0,
                step=0.1,
                label="Length penalty (score = log-probability / length ** penalty; beam search only)",
                elem_id=f"{name}-length-penalty",
            )
            button = gr.Button("Translate", variant="primary", elem_id=f"{name}-submit")
            gr.Examples(TRANSLATION_EXAMPLES, inputs=text)
        with gr.Column():
            best = gr.Textbox(label="Best translation", interactive=False, elem_id=f"{name}-translation")
            message = gr.Markdown(elem_id=f"{name}-message")
            hypotheses = gr.Dataframe(
                headers=["rank", "translation", "score", "log-prob"],
                datatype=["number", "str", "number", "number"],
                interactive=False,
                label=f"n-best list (min(beam size, {MAX_HYPOTHESES}) hypotheses)",
                elem_id=f"{name}-nbest",
            )
    heatmap = gr.Plot(label="Attention of the best translation", format="png", elem_id=f"{name}-heatmap")

    def run(text: str, num_beams: float, length_penalty: float) -> tuple[str, list | None, Figure | None, str]:
        result = translate(demo_model.model, demo_model.tokenizer, text, int(num_beams), length_penalty)
        rows = [
            [rank, item.text, round(item.score, 4), round(item.log_probability, 4)]
            for rank, item in enumerate(result.hypotheses, start=1)
        ]
        figure = None
        if result.attention is not None:
            figure = attention_figure(result.attention, result.source_tokens, result.target_tokens)
        best_text = result.hypotheses[0].text if result.hypotheses else ""
        return best_text, rows or None, figure, result.message

    for event in (button.click, text.submit):
        event(run, inputs=[text, num_beams, length_penalty], outputs=[best, hypotheses, heatmap, message])


def continuations_html(result: Generation) -> str:
    """The continuations as an HTML list: the end of the prompt (as read) in grey, then the generated text marked."""
    prompt = result.prompt
    if len(prompt) > PROMPT_SHOWN_CHARACTERS:
        prompt = "…" + prompt[-PROMPT_SHOWN_CHARACTERS:]
    items = []
    for continuation in result.continuations:
        end = " <small>[end of text]</small>" if continuation.ended else ""
        items.append(
            f'<li style="white-space: pre-wrap"><span style="opacity: 0.6">{html.escape(prompt)}</span>'
            f"<mark><b>{html.escape(continuation.text)}</b></mark>{end} <small>({len(continuation.token_ids)} "
            f"tokens, log-probability {continuation.log_probability:.2f})</small></li>"
        )
    return "<ol>" + "".join(items) + "</ol>"


def generation_summary(result: Generation) -> str:
    """One line on the prompt: its perplexity under the model (when it has a token to score), and the seed."""
    parts = []
    if result.prompt_perplexity is not None:
        parts.append(
            f"**Prompt perplexity:** {result.prompt_perplexity:,.1f} (exp of the mean negative log-likelihood of "
            f"{result.scored_tokens:,} tokens, each given the ones before it)"
        )
    if result.seed is not None:
        parts.append(f"**Seed:** {result.seed}")
    return " · ".join(parts)


def language_model_tab(demo_model: DemoModel, name: str) -> None:
    """The controls of a language model's tab (inside an open `gr.Tab`): a prompt and decoding settings in; the
    continuations, the first one's token probabilities and the prompt's perplexity out."""
    defaults = GENERATION_DEFAULTS
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(
                label="Prompt (empty: the start of a text)", lines=3, placeholder="This movie…", elem_id=f"{name}-text"
            )
            decoding = gr.Radio(
                list(DECODINGS), value=defaults["decoding"], label="Decoding", elem_id=f"{name}-decoding"
            )
            with gr.Row():
                max_new_tokens = gr.Slider(
                    1,
                    MAX_NEW_TOKENS,
                    value=defaults["max_new_tokens"],
                    step=1,
                    label="Max new tokens",
                    elem_id=f"{name}-max-new-tokens",
                )
                num_continuations = gr.Slider(
                    1,
                    MAX_CONTINUATIONS,
                    value=defaults["num_continuations"],
                    step=1,
                    label="Continuations (sampling: samples; beam search: n-best)",
                    elem_id=f"{name}-count",
                )
            with gr.Row():
                temperature = gr.Slider(
                    0.05,
                    2.0,
                    value=defaults["temperature"],
                    step=0.05,
                    label="Temperature (sampling)",
                    elem_id=f"{name}-temperature",
                )
                top_p = gr.Slider(
                    0.05,
                    1.0,
                    value=defaults["top_p"],
                    step=0.05,
                    label="Top-p (sampling; 1: off)",
                    elem_id=f"{name}-top-p",
                )
            with gr.Row():
                top_k = gr.Slider(
                    0, 200, value=defaults["top_k"], step=1, label="Top-k (sampling; 0: off)", elem_id=f"{name}-top-k"
                )
                seed = gr.Number(
                    value=defaults["seed"],
                    precision=0,
                    label="Seed (sampling; empty: a new one)",
                    elem_id=f"{name}-seed",
                )
            num_beams = gr.Slider(
                1,
                MAX_BEAMS,
                value=defaults["num_beams"],
                step=1,
                label="Beam size (beam search)",
                elem_id=f"{name}-beams",
            )
            button = gr.Button("Generate", variant="primary", elem_id=f"{name}-submit")
            gr.Examples(PROMPT_EXAMPLES, inputs=prompt)
        with gr.Column():
            continuations = gr.HTML(
                label="Continuations: the prompt as read, then the generated text (marked)",
                show_label=True,
                container=True,
                padding=True,
                elem_id=f"{name}-continuations",
            )
            summary = gr.Markdown(elem_id=f"{name}-summary")
            message = gr.Markdown(elem_id=f"{name}-message")
    tokens = gr.HighlightedText(
        label="Token probabilities of continuation 1", show_legend=False, elem_id=f"{name}-tokens"
    )
    gr.Markdown(TOKEN_PROBABILITY_EXPLANATION)
    table = gr.Dataframe(
        headers=["continuation", "step", "token", "probability"],
        datatype=["number", "number", "str", "number"],
        interactive=False,
        label="Token probabilities",
        elem_id=f"{name}-probabilities",
    )

    def run(
        prompt: str,
        decoding: str,
        max_new_tokens: float,
        num_continuations: float,
        temperature: float,
        top_p: float,
        top_k: float,
        seed: float | None,
        num_beams: float,
    ) -> tuple[str, str, list | None, list | None, str]:
        result = generate_text(
            demo_model.model,
            demo_model.tokenizer,
            prompt,
            decoding=decoding,
            max_new_tokens=max_new_tokens,
            num_continuations=num_continuations,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            num_beams=num_beams,
            seed=seed,
        )
        if not result.continuations:
            return "", "", None, None, result.message
        first = result.continuations[0]
        shown = result.prompt[-PROMPT_SHOWN_CHARACTERS:]
        spans = ([(shown, None)] if shown else []) + [
            (piece, round(probability, 4)) for piece, probability in zip(first.pieces, first.probabilities)
        ]
        rows = [
            [number, step, token, round(probability, 4)]
            for number, continuation in enumerate(result.continuations, start=1)
            for step, (token, probability) in enumerate(zip(continuation.tokens, continuation.probabilities), start=1)
        ]
        return continuations_html(result), generation_summary(result), spans, rows, result.message

    inputs = [prompt, decoding, max_new_tokens, num_continuations, temperature, top_p, top_k, seed, num_beams]
    for event in (button.click, prompt.submit):
        event(run, inputs=inputs, outputs=[continuations, summary, tokens, table, message])


# The tab builder of each recipe task; a new family's page is one function here.
TAB_BUILDERS: dict[str, Callable[[DemoModel, str], None]] = {
    "classification": classifier_tab,
    "translation": translation_tab,
    "language_modeling": language_model_tab,
}


def build_demo(models: list[DemoModel], title: str = "hf_rnn demo") -> gr.Blocks:
    """A page with one tab per model, built by its task's tab builder (elements' ids: `<task>-<index>-...`)."""
    unknown = sorted({item.task for item in models} - set(TAB_BUILDERS))
    if unknown:
        raise ValueError(f"no demo page for task(s) {unknown}; pages exist for {sorted(TAB_BUILDERS)}")
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}")
        for index, item in enumerate(models):
            with gr.Tab(item.title):
                TAB_BUILDERS[item.task](item, f"{item.task}-{index}")
    return demo


def load_space_model(model_id: str, task: str, auto_class: str, title: str) -> DemoModel:
    """A model of the Hub (or `$HF_RNN_SPACE_MODEL`, which overrides `model_id`) with its own code
    (`trust_remote_code=True`): no hf_rnn needed. `auto_class` names the transformers Auto class of its head."""
    model_id = os.environ.get(SPACE_MODEL_VARIABLE) or model_id
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_id, trust_remote_code=True)
    model = getattr(transformers, auto_class).from_pretrained(model_id, trust_remote_code=True).eval()
    return DemoModel(title=title, task=task, model=model, tokenizer=tokenizer)
