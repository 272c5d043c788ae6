"""Macro-F1 as an `evaluate` metric: `hf_rnn.metrics.load_metric("f1")`, or `evaluate.load(<this folder>)`."""

import datasets
import evaluate

from hf_rnn.metrics import classification_metrics


class F1(evaluate.Metric):
    """Macro-averaged F1 over the labels present in references or predictions, as `classification_metrics`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Macro-F1: the unweighted mean over labels of the per-label F1 score.",
            citation="",
            inputs_description="predictions, references: integer class ids, one per example.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        return {"f1": classification_metrics(predictions, references)["macro_f1"]}
