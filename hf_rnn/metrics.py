"""Metrics computed locally (no Hub download): accuracy and macro-F1 with numpy, BLEU and chrF with sacreBLEU.

The same metrics are available through the `evaluate` API, offline: `load_metric("accuracy" | "f1" |
"sacrebleu" | "chrf")` loads the metric modules shipped in `hf_rnn/evaluate_metrics/`, which take the inputs and
return the keys of the `evaluate` metrics they are named after (`score` for sacrebleu and chrf, `f1` binary by
default), computed with the same settings as the functions below.
"""

from pathlib import Path

import numpy as np
import sacrebleu

EVALUATE_METRICS_DIR = Path(__file__).parent / "evaluate_metrics"


def classification_metrics(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged F1 over the labels present in `references` or `predictions`."""
    predictions = np.asarray(predictions).reshape(-1)
    references = np.asarray(references).reshape(-1)
    f1_scores = []
    for label in np.union1d(predictions, references):
        true_positive = np.sum((predictions == label) & (references == label))
        predicted = np.sum(predictions == label)
        actual = np.sum(references == label)
        f1_scores.append(2 * true_positive / (predicted + actual) if predicted + actual else 0.0)
    return {
        "accuracy": float(np.mean(predictions == references)) if len(references) else 0.0,
        "macro_f1": float(np.mean(f1_scores)) if f1_scores else 0.0,
    }


def translation_metrics(hypotheses: list[str], references: list[str]) -> dict[str, float | str]:
    """Corpus sacreBLEU (13a, cased, detokenised input) and chrF, with their signatures."""
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def reference_streams(references: list, metric_name: str) -> list[list[str]]:
    """sacreBLEU's reference streams (stream k = every hypothesis's k-th reference) from `evaluate`'s references,
    one string or a list of strings per hypothesis (the same number for each)."""
    references = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
    if len({len(refs) for refs in references}) > 1:
        raise ValueError(f"{metric_name} needs the same number of references for every prediction.")
    return [list(stream) for stream in zip(*references)]


def translation_metric_features() -> list:
    """`evaluate` input features of the translation metrics: one reference string, or a list of them, each."""
    import datasets

    return [
        datasets.Features(
            {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
        ),
        datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
    ]


def translation_signatures() -> dict[str, str]:
    """The sacreBLEU signatures (settings and version) of `translation_metrics`, one reference per hypothesis."""
    # sacrebleu learns the number of references, part of the signature, from a scoring.
    scores = translation_metrics(["."], ["."])
    return {key: value for key, value in scores.items() if key.endswith("_signature")}


def load_metric(name: str):
    """An `evaluate` metric module of hf_rnn (`accuracy`, `f1` (macro), `sacrebleu`, `chrf`), loaded offline."""
    import evaluate  # imported here: it takes seconds, and training and evaluation do not need it

    available = sorted(path.stem for path in EVALUATE_METRICS_DIR.glob("*/*.py") if path.stem == path.parent.name)
    if name not in available:
        raise ValueError(f"unknown metric {name!r}: hf_rnn ships {available}.")
    return evaluate.load(str(EVALUATE_METRICS_DIR / name))
