"""`hf-rnn demo` (`hf_rnn.demo`): the prediction functions behind the page on the tiny trained runs (classifier,
translator, language model), bad input, the page's tabs, and the command without gradio. The browser test is `test_demo_browser.py`, the Space `test_demo_space.py`.
"""

import inspect
import math
import sys

import pytest
import torch
from transformers import AutoTokenizer

gr = pytest.importorskip("gradio", reason='the demo needs the demo extra: pip install "hf_rnn[demo]"')

import hf_rnn  # noqa: E402
from hf_rnn.commands import main as cli_main  # noqa: E402
from hf_rnn.demo import DemoError, build_demo, load_demo_model  # noqa: E402
from hf_rnn.demo.app import (  # noqa: E402
    GENERATION_DEFAULTS,
    TAB_BUILDERS,
    classify,
    generate_text,
    highlighted_spans,
    translate,
)

pytestmark = pytest.mark.integration  # trained run folders on disk, the command line

REVIEW = "A wonderful, moving film with a superb cast."
SOURCE = "Ein Hund läuft über eine grüne Wiese."
PROMPT = "This movie was"
# One of each kind of awkward input (as in test_reliability.py); each must give an answer or a message.
AWKWARD_TEXTS = {
    "empty": "",
    "whitespace": "   \t\n ",
    "100k characters": "A wonderful film. " * 5600,
    "control characters": "\x00\x01\x02 NUL and control \x7f\x1b[31m characters",
    "other scripts": "日本語のレビュー العربية עברית हिन्दी",
    "undecodable bytes": "invalid utf-8 \udcff\udcfe from surrogateescape",
}


@pytest.fixture(scope="module")
def classifier(classifier_run):
    return load_demo_model(classifier_run)


@pytest.fixture(scope="module")
def translator(seq2seq_run):
    return load_demo_model(seq2seq_run)


@pytest.fixture(scope="module")
def language_model(lm_run):
    return load_demo_model(lm_run)


def start_of_text(tokenizer, prompt: str) -> torch.Tensor:
    """`(1, 1 + prompt tokens)`: `</s>` then the prompt, as the demo reads a prompt that is not cut."""
    return torch.tensor([[tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])


def cut_after_eos(ids: list[int], eos_token_id: int) -> list[int]:
    return ids[: ids.index(eos_token_id) + 1] if eos_token_id in ids else ids


def test_classifier_scores_sum_to_one_and_every_token_gets_a_share(classifier):
    result = classify(classifier.model, classifier.tokenizer, REVIEW)
    assert sorted(result.scores) == sorted(classifier.model.config.id2label.values())
    assert math.isclose(sum(result.scores.values()), 1.0, rel_tol=1e-6)
    ids = classifier.tokenizer(REVIEW)["input_ids"]
    assert [token for token, _ in result.token_weights] == classifier.tokenizer.convert_ids_to_tokens(ids)
    assert math.isclose(sum(share for _, share in result.token_weights), 1.0, rel_tol=1e-5)
    assert result.per_token == "gradient x input"  # the fixture pools with mean_max
    # The spans give back the text, and the strongest token is 1.
    assert "".join(piece for piece, _ in result.spans if piece.strip() not in ("</s>", "<s>")) == REVIEW
    assert max(weight for _, weight in result.spans if weight is not None) == 1.0
    assert result.message == ""
    # The saliency's backward pass leaves no gradients and no hook behind.
    assert all(parameter.grad is None for parameter in classifier.model.parameters())
    assert not classifier.model.get_input_embeddings()._forward_hooks


def test_gradient_x_input_is_the_embedding_times_the_predicted_logits_gradient(classifier):
    model, tokenizer = classifier.model, classifier.tokenizer
    text = "Wonderful, moving film; superb cast."
    result = classify(model, tokenizer, text)
    encoded = tokenizer([text], return_tensors="pt")
    ids = encoded["input_ids"][0]
    assert len(set(ids.tolist())) == len(ids)  # each token once: its embedding row's gradient is its own
    logits = model(**encoded).logits[0]
    (gradient,) = torch.autograd.grad(logits.max(), model.get_input_embeddings().weight)
    saliency = (gradient[ids] * model.get_input_embeddings().weight[ids]).norm(dim=-1)
    expected = (saliency / saliency.sum()).tolist()
    assert [share for _, share in result.token_weights] == pytest.approx(expected, rel=1e-4)


def test_attention_pooling_classifier_shows_its_pooling_weights(classifier_run, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(classifier_run)
    config = hf_rnn.RnnClassifierConfig(
        vocab_size=len(tokenizer), embedding_size=8, hidden_size=8, pooling="attention", pad_token_id=0
    )
    torch.manual_seed(0)
    model = hf_rnn.RnnForSequenceClassification(config).eval()
    result = classify(model, tokenizer, REVIEW)
    assert result.per_token == "attention pooling"
    encoded = tokenizer([REVIEW], return_tensors="pt")
    with torch.no_grad():
        weights = model(**encoded, output_attentions=True).attentions[0][0, 0]
    assert [share for _, share in result.token_weights] == pytest.approx(weights.tolist(), rel=1e-5)
    assert math.isclose(sum(result.scores.values()), 1.0, rel_tol=1e-6)


def test_highlighted_spans_keep_the_text_between_tokens_and_name_special_tokens():
    spans = highlighted_spans("ab  cd", ["ab", "cd", "</s>"], [(0, 2), (4, 6), (0, 0)], [0.5, 0.25, 0.25])
    assert spans == [("ab", 1.0), ("  ", None), ("cd", 0.5), (" </s>", 0.5)]


@pytest.mark.parametrize("num_beams", [1, 3, 7])
def test_translation_nbest_is_sorted_and_the_heatmap_is_target_by_source(translator, num_beams):
    model, tokenizer = translator.model, translator.tokenizer
    result = translate(model, tokenizer, SOURCE, num_beams=num_beams, length_penalty=1.0)
    assert len(result.hypotheses) == min(num_beams, 5)
    scores = [item.score for item in result.hypotheses]
    assert scores == sorted(scores, reverse=True)
    for item in result.hypotheses:
        assert item.score == pytest.approx(item.log_probability / item.length)
    # The best hypothesis is what `generate` returns with this beam size.
    encoded = tokenizer([SOURCE], return_tensors="pt")
    best = tokenizer.decode(model.generate(**encoded, num_beams=num_beams)[0], skip_special_tokens=True).strip()
    assert result.hypotheses[0].text == best
    assert result.attention.shape == (len(result.target_tokens), len(result.source_tokens))
    assert result.attention.shape[0] == result.hypotheses[0].length
    assert result.attention.sum(axis=1) == pytest.approx(1.0, rel=1e-5)  # a softmax over the source per target token


def test_translation_scores_follow_the_length_penalty_and_the_beam_search(translator):
    model, tokenizer = translator.model, translator.tokenizer
    result = translate(model, tokenizer, SOURCE, num_beams=4, length_penalty=0.0)
    assert all(item.score == pytest.approx(item.log_probability) for item in result.hypotheses)
    encoded = tokenizer([SOURCE], return_tensors="pt")
    searched = model.generate(
        **encoded,
        num_beams=4,
        num_return_sequences=4,
        length_penalty=0.0,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert [item.score for item in result.hypotheses] == pytest.approx(searched.sequences_scores.tolist(), abs=1e-3)


@pytest.mark.parametrize("kind", AWKWARD_TEXTS)
def test_bad_input_gets_an_answer_or_a_message(classifier, translator, kind):
    text = AWKWARD_TEXTS[kind]
    classified = classify(classifier.model, classifier.tokenizer, text)
    translated = translate(translator.model, translator.tokenizer, text, num_beams=3)
    for result, answer in ((classified, classified.scores), (translated, translated.hypotheses)):
        assert answer or result.message
        if kind in ("empty", "whitespace"):
            assert not answer and result.message.startswith("Type a")
        if kind == "100k characters":
            assert "Only the first 64 tokens were read" in result.message
    if classified.scores:
        assert math.isclose(sum(classified.scores.values()), 1.0, rel_tol=1e-6)
    if kind == "other scripts":
        assert "unknown to this model's vocabulary" in classified.message
    if translated.hypotheses:
        assert translated.attention.shape == (len(translated.target_tokens), len(translated.source_tokens))


def test_greedy_continuation_is_greedy_search_and_its_probabilities_are_the_searchs_own(language_model):
    model, tokenizer = language_model.model, language_model.tokenizer
    result = generate_text(model, tokenizer, PROMPT, decoding="greedy", max_new_tokens=12, num_continuations=3)
    assert result == generate_text(model, tokenizer, PROMPT, decoding="greedy", max_new_tokens=12)  # deterministic
    assert len(result.continuations) == 1 and result.seed is None
    assert result.message == "Greedy decoding has one continuation (the most probable token at every step)."
    (continuation,) = result.continuations
    context = start_of_text(tokenizer, PROMPT)
    searched = model.generate(
        context,
        attention_mask=torch.ones_like(context),
        max_new_tokens=12,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
    )
    generated = cut_after_eos(searched.sequences[0, context.shape[1] :].tolist(), tokenizer.eos_token_id)
    assert continuation.token_ids == generated
    assert continuation.tokens == tokenizer.convert_ids_to_tokens(generated)
    # Rescoring after the search gives what the search itself computed at each step (its raw logits).
    expected = [step[0].float().log_softmax(-1)[token].exp().item() for step, token in zip(searched.logits, generated)]
    assert continuation.probabilities == pytest.approx(expected, rel=1e-4)
    assert all(0.0 < probability <= 1.0 for probability in continuation.probabilities)
    assert continuation.log_probability == pytest.approx(sum(map(math.log, expected)), rel=1e-4)
    # The prompt as read, then the continuation's text, is the decoded sequence; each token adds its piece.
    words = [token for token in generated if token != tokenizer.eos_token_id]
    assert result.prompt == "this movie was"  # the tiny run's tokenizer lowercases
    assert result.prompt + continuation.text == tokenizer.decode(context[0, 1:].tolist() + words).lstrip()
    assert "".join(continuation.pieces[: len(words)]) == continuation.text
    assert continuation.ended == (generated[-1] == tokenizer.eos_token_id)


def test_prompt_perplexity_scores_every_prompt_token_from_the_start_of_a_text(language_model):
    model, tokenizer = language_model.model, language_model.tokenizer
    result = generate_text(model, tokenizer, PROMPT, decoding="greedy", max_new_tokens=1)
    context = start_of_text(tokenizer, PROMPT)
    with torch.no_grad():
        log_probs = model(context).logits[0, :-1].float().log_softmax(-1)  # position t predicts token t + 1
    nll = -log_probs.gather(-1, context[0, 1:, None]).mean()
    assert result.prompt_tokens == result.scored_tokens == context.shape[1] - 1
    assert result.prompt_perplexity == pytest.approx(math.exp(nll), rel=1e-4)


def test_sampling_is_reproducible_with_a_seed_and_leaves_the_global_generator_alone(language_model):
    model, tokenizer = language_model.model, language_model.tokenizer
    settings = {"decoding": "sampling", "max_new_tokens": 15, "num_continuations": 4, "temperature": 0.9}
    settings |= {"top_p": 0.95, "top_k": 50}
    state = torch.get_rng_state()
    first = generate_text(model, tokenizer, PROMPT, seed=7, **settings)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == generate_text(model, tokenizer, PROMPT, seed=7, **settings)
    assert len(first.continuations) == 4 and first.seed == 7 and first.message == ""
    other = generate_text(model, tokenizer, PROMPT, seed=8, **settings)
    assert [item.token_ids for item in other.continuations] != [item.token_ids for item in first.continuations]
    # The samples are `generate`'s with the same seed and settings.
    context = start_of_text(tokenizer, PROMPT)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        sampled = model.generate(
            context,
            attention_mask=torch.ones_like(context),
            do_sample=True,
            num_return_sequences=4,
            max_new_tokens=15,
            temperature=0.9,
            top_p=0.95,
            top_k=50,
        )
    expected = [cut_after_eos(row[context.shape[1] :], tokenizer.eos_token_id) for row in sampled.tolist()]
    assert [item.token_ids for item in first.continuations] == expected
    for item in first.continuations:
        assert len(item.probabilities) == len(item.token_ids) and all(0.0 < p <= 1.0 for p in item.probabilities)
    # Without a seed one is drawn, reported, and reproduces the samples.
    drawn = generate_text(model, tokenizer, PROMPT, seed=None, **settings)
    assert isinstance(drawn.seed, int) and drawn == generate_text(model, tokenizer, PROMPT, seed=drawn.seed, **settings)


def test_beam_search_returns_the_n_best_with_the_searchs_scores(language_model):
    model, tokenizer = language_model.model, language_model.tokenizer
    result = generate_text(
        model, tokenizer, PROMPT, decoding="beam search", num_beams=4, num_continuations=5, max_new_tokens=10
    )
    assert len(result.continuations) == 4 and result.seed is None
    assert result.message == "Beam search with 4 beams keeps 4 continuations, not 5."
    context = start_of_text(tokenizer, PROMPT)
    searched = model.generate(
        context,
        attention_mask=torch.ones_like(context),
        num_beams=4,
        num_return_sequences=4,
        do_sample=False,
        max_new_tokens=10,
        output_scores=True,
        return_dict_in_generate=True,
    )
    expected = [cut_after_eos(row[context.shape[1] :], tokenizer.eos_token_id) for row in searched.sequences.tolist()]
    assert [item.token_ids for item in result.continuations] == expected
    # Beam search ranks by log-probability / length (length_penalty 1): the rescored sums give its scores back.
    scores = [item.log_probability / len(item.token_ids) for item in result.continuations]
    assert scores == pytest.approx(searched.sequences_scores.tolist(), abs=1e-4)


def test_out_of_range_settings_are_brought_into_range(language_model):
    model, tokenizer = language_model.model, language_model.tokenizer
    result = generate_text(
        model, tokenizer, PROMPT, max_new_tokens=10_000, num_continuations=0, temperature=0.0, top_p=-1, seed=2**70
    )
    assert len(result.continuations) == 1 and len(result.continuations[0].token_ids) <= 200
    assert result.seed == 2**70 % 2**32
    refused = generate_text(model, tokenizer, PROMPT, decoding="top-secret")
    assert not refused.continuations and refused.message == "Choose a decoding method: greedy, sampling, beam search."
    defaults = {name: value.default for name, value in inspect.signature(generate_text).parameters.items()}
    assert {name: defaults[name] for name in GENERATION_DEFAULTS} == GENERATION_DEFAULTS  # the page's start values


@pytest.mark.parametrize("kind", AWKWARD_TEXTS)
def test_bad_prompts_get_continuations_and_a_message_when_needed(language_model, kind):
    model, tokenizer = language_model.model, language_model.tokenizer
    result = generate_text(model, tokenizer, AWKWARD_TEXTS[kind], max_new_tokens=8, num_continuations=2)
    assert len(result.continuations) == 2
    for item in result.continuations:
        assert 1 <= len(item.token_ids) <= 8 and all(0.0 < p <= 1.0 for p in item.probabilities)
    if kind in ("empty", "whitespace"):
        assert result.prompt == "" and result.prompt_perplexity is None and result.scored_tokens == 0
        assert result.message == "No prompt (or nothing the tokenizer reads in it): generated from the start of a text."
    else:
        assert result.prompt and 1.0 <= result.prompt_perplexity < math.inf
    if kind == "100k characters":
        assert result.prompt_tokens == 1_000 and result.scored_tokens == 999  # its first token has no context
        assert result.message.startswith("The prompt has 28,000 tokens: only its last 1,000 were read")
        assert result.prompt.endswith("a wonderful film.")
    if kind == "other scripts":
        assert "unknown to this model's vocabulary" in result.message
    if kind == "control characters":
        assert "\x00" not in result.prompt and "\x1b" not in result.prompt


def test_the_page_has_one_tab_per_run_built_for_its_family(classifier_run, seq2seq_run, lm_run):
    demo = build_demo([classifier_run, seq2seq_run, lm_run])
    assert isinstance(demo, gr.Blocks)
    tabs = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == [classifier_run.name, seq2seq_run.name, lm_run.name]
    element_ids = {block.elem_id for block in demo.blocks.values()}
    assert {
        "classification-0-label",
        "classification-0-tokens",
        "translation-1-nbest",
        "translation-1-heatmap",
        "language_modeling-2-continuations",
        "language_modeling-2-tokens",
        "language_modeling-2-probabilities",
    } <= element_ids
    assert sorted(TAB_BUILDERS) == ["classification", "language_modeling", "translation"]
    assert type(load_demo_model(classifier_run).model).__name__ == "RnnForSequenceClassification"
    assert type(load_demo_model(lm_run).model).__name__ == "RnnForCausalLM"


def test_a_family_without_a_page_is_refused_in_one_line(seq2seq_run, monkeypatch):
    monkeypatch.delitem(TAB_BUILDERS, "translation")
    pages = "\\['classification', 'language_modeling'\\]"
    with pytest.raises(DemoError, match=f"is a translation model: the demo has pages for {pages}"):
        build_demo([seq2seq_run])


def test_demo_command_launches_with_the_host_port_and_share_given(classifier_run, seq2seq_run, monkeypatch):
    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs))
    argv = ["demo", str(classifier_run), str(seq2seq_run), "--port", "7999", "--host", "0.0.0.0", "--share"]
    assert cli_main(argv) == 0
    assert launched == {"server_name": "0.0.0.0", "server_port": 7999, "share": True}


@pytest.mark.parametrize("command", ["demo", "space"])
def test_without_gradio_the_commands_say_how_to_install_it(command, classifier_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    argv = ["demo", str(classifier_run)] if command == "demo" else ["space", str(classifier_run), "a/b", str(tmp_path)]
    assert cli_main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error == f'hf-rnn {command}: error: the demo needs gradio, an optional extra: pip install "hf_rnn[demo]"'


def test_a_missing_run_is_one_line(tmp_path, capsys):
    assert cli_main(["demo", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
