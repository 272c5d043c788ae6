"""Metrics computed locally (no Hub download): accuracy and macro-F1 with numpy, BLEU and chrF with sacreBLEU."""

import numpy as np
import sacrebleu


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
