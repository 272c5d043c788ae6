"""Macro-F1 as an `evaluate` metric: `hf_rnn.metrics.load_metric("f1")`, or `evaluate.load(<this folder>)`."""

import datasets
import evaluate

from hf_rnn.metrics import classification_metrics


class F1(evaluate.Metric):
    """F1 with the canonical `f1` metric's arguments: `average="binary"` (the default; F1 of `pos_label`) or
    `"macro"` (the unweighted mean over the labels present, as `classification_metrics`'s `macro_f1`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="F1 of the positive label (average='binary') or its unweighted mean over labels ('macro').",
            citation="",
            inputs_description="predictions, references: integer class ids, one per example.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(
        self, predictions: list[int], references: list[int], average: str = "binary", pos_label: int = 1
    ) -> dict[str, float]:
        if average == "macro":
            return {"f1": classification_metrics(predictions, references)["macro_f1"]}
        if average != "binary":
            raise ValueError(f"average must be 'binary' or 'macro', got {average!r}.")
        predicted = [prediction == pos_label for prediction in predictions]
        actual = [reference == pos_label for reference in references]
        true_positive = sum(p and a for p, a in zip(predicted, actual))
        total = sum(predicted) + sum(actual)
        return {"f1": 2 * true_positive / total if total else 0.0}
