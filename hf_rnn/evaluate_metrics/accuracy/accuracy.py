"""Accuracy as an `evaluate` metric: `hf_rnn.metrics.load_metric("accuracy")`, or `evaluate.load(<this folder>)`."""

import datasets
import evaluate

from hf_rnn.metrics import classification_metrics


class Accuracy(evaluate.Metric):
    """The fraction of predicted class ids equal to the reference ids, as `classification_metrics` computes it."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Accuracy: the fraction of predictions equal to their reference label.",
            citation="",
            inputs_description="predictions, references: integer class ids, one per example.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        return {"accuracy": classification_metrics(predictions, references)["accuracy"]}
