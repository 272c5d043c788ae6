"""The demo page in a real browser: `hf-rnn demo`'s page for the tiny classifier, translator and language-model
runs, served on a free port, driven by headless Chromium through Playwright. It types a review, a German sentence
and a prompt, submits them and checks the label, the translation, the n-best list, that the attention heatmap
rendered as an image, the continuations and their token probabilities, and that bad input shows a message in the
page.

Needs `pip install playwright` and a Chromium: the system's (`apt-get install chromium`) or Playwright's own
(`playwright install chromium`); without them it skips, saying so. Screenshots go to a temporary folder, or to
`$HF_RNN_DEMO_SCREENSHOTS`; `$HF_RNN_DEMO_RUNS` (a classifier, a translator and optionally a language model,
comma-separated) drives other runs, e.g. the screenshots in docs/demo/:

    HF_RNN_DEMO_RUNS=runs/imdb-bilstm-s42,runs/m30k-de-en HF_RNN_DEMO_SCREENSHOTS=docs/demo \\
        python -m pytest tests/test_demo_browser.py

Without a third run the language-model tab serves the tiny test run, and its screenshot stays in a temporary folder
(a screenshot of an untrained model does not belong in the docs).
"""

import os
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason='the demo needs the demo extra: pip install "hf_rnn[demo]"')

from hf_rnn.demo import build_demo, load_demo_model  # noqa: E402
from hf_rnn.demo.app import GENERATION_DEFAULTS, classify, generate_text, translate  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a web server and a browser process

NO_BROWSER = (
    "no Chromium: install chromium from the system package manager (e.g. `apt-get install chromium`) and "
    "`pip install playwright`"
)
SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
REVIEW = "A wonderful, moving film with a superb cast."
SOURCE = "Ein Hund läuft über eine grüne Wiese."
PROMPT = "This movie was"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason=NO_BROWSER)
    executable = next(filter(None, map(shutil.which, SYSTEM_BROWSERS)), None)  # None: Playwright's own Chromium
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        except sync_api.Error as error:
            pytest.skip(f"{NO_BROWSER} ({str(error).strip().splitlines()[0]})")
        yield chromium
        chromium.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_runs(classifier_run, seq2seq_run, lm_run):
    """(page URL, [classifier run, translator run, language-model run]) of a demo served in this process for the
    module's tests."""
    runs = os.environ["HF_RNN_DEMO_RUNS"].split(",") if os.environ.get("HF_RNN_DEMO_RUNS") else None
    runs = runs or [str(classifier_run), str(seq2seq_run)]
    if len(runs) == 2:
        runs.append(str(lm_run))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        demo = build_demo(runs)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", runs
    demo.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("HF_RNN_DEMO_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_classify_and_translate_in_a_browser(browser, served_runs, screenshots):
    from playwright.sync_api import expect

    url, (classifier_run, translator_run, _) = served_runs
    classifier, translator = load_demo_model(classifier_run), load_demo_model(translator_run)
    scores = classify(classifier.model, classifier.tokenizer, REVIEW).scores
    expected_label = max(scores, key=scores.get)
    expected = translate(translator.model, translator.tokenizer, SOURCE, num_beams=5, length_penalty=1.0)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)

    page.fill("#classification-0-text textarea", REVIEW)
    page.click("#classification-0-submit")
    label = page.locator("#classification-0-label")
    expect(label.get_by_test_id("label-output-value")).to_have_text(expected_label, timeout=TIMEOUT_MS)
    for name in scores:  # a bar per class
        expect(label.get_by_test_id(f"{name}-confidence-set")).to_be_visible()
    expect(page.locator("#classification-0-tokens")).to_contain_text("film")
    page.screenshot(path=screenshots / "classifier.png", full_page=True)

    page.fill("#classification-0-text textarea", "   ")
    page.click("#classification-0-submit")
    expect(page.locator("#classification-0-message")).to_contain_text("Type a text to classify.")

    page.get_by_role("tab", name=translator.title).click()
    page.fill("#translation-1-text textarea", SOURCE)
    page.click("#translation-1-submit")
    best = expected.hypotheses[0].text
    expect(page.locator("#translation-1-translation textarea")).to_have_value(best, timeout=TIMEOUT_MS)
    expect(page.locator("#translation-1-nbest")).to_contain_text(best)
    heatmap = page.locator("#translation-1-heatmap img")
    expect(heatmap).to_be_visible()
    assert heatmap.evaluate("image => image.naturalWidth") > 100  # a drawn PNG, not a broken image
    page.screenshot(path=screenshots / "translation.png", full_page=True)

    page.fill("#translation-1-text textarea", "Ein Satz. " * 10_000)  # 100,000 characters
    page.click("#translation-1-submit")
    expect(page.locator("#translation-1-message")).to_contain_text("Only the first", timeout=TIMEOUT_MS)
    page.close()


def test_generate_in_a_browser(browser, served_runs, screenshots, lm_run, tmp_path):
    from playwright.sync_api import expect

    url, (_, _, language_model_run) = served_runs
    language_model = load_demo_model(language_model_run)
    expected = generate_text(language_model.model, language_model.tokenizer, PROMPT, **GENERATION_DEFAULTS)
    first = expected.continuations[0]

    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_role("tab", name=language_model.title).click()
    page.fill("#language_modeling-2-text textarea", PROMPT)
    page.click("#language_modeling-2-submit")  # the page's own settings: sampling, seed 0

    continuations = page.locator("#language_modeling-2-continuations li")
    expect(continuations).to_have_count(len(expected.continuations), timeout=TIMEOUT_MS)
    for item, continuation in zip(continuations.all(), expected.continuations):
        expect(item.locator("mark")).to_have_text(continuation.text.strip())  # the generated part, marked
        expect(item).to_contain_text(expected.prompt)
    expect(page.locator("#language_modeling-2-summary")).to_contain_text(
        f"Prompt perplexity: {expected.prompt_perplexity:,.1f}"
    )
    tokens = page.locator("#language_modeling-2-tokens")
    expect(tokens).to_contain_text(first.pieces[0].strip())
    table = page.locator("#language_modeling-2-probabilities")
    expect(table).to_contain_text(first.tokens[0])
    expect(table).to_contain_text(str(round(first.probabilities[0], 4)))
    # The tiny test run's screenshot never goes to the docs' folder.
    folder = tmp_path if language_model_run == str(lm_run) else screenshots
    page.screenshot(path=folder / "language_model.png", full_page=True)

    page.fill("#language_modeling-2-text textarea", "")  # no prompt: generated from the start of a text
    page.click("#language_modeling-2-submit")
    expect(page.locator("#language_modeling-2-message")).to_contain_text("No prompt", timeout=TIMEOUT_MS)
    expect(continuations).to_have_count(len(expected.continuations))

    page.fill("#language_modeling-2-text textarea", "A wonderful film. " * 5_600)  # 100,800 characters
    page.click("#language_modeling-2-submit")
    expect(page.locator("#language_modeling-2-message")).to_contain_text(
        "only its last 1,000 were read", timeout=TIMEOUT_MS
    )
    page.close()
