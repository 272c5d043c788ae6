"""Corpus chrF as an `evaluate` metric: `hf_rnn.metrics.load_metric("chrf")`, or `evaluate.load(<this folder>)`."""

import datasets
import evaluate

from hf_rnn.metrics import translation_metrics

CITATION = """@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    pages = "392--395",
}"""


class Chrf(evaluate.Metric):
    """chrF (character 6-grams, beta 2) of detokenised hypotheses against one reference each, with its signature."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus chrF computed by sacreBLEU with its default settings, rounded to 2 decimals.",
            citation=CITATION,
            inputs_description="predictions: detokenised hypotheses; references: one detokenised reference each.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float | str]:
        scores = translation_metrics(predictions, references)
        return {"chrf": scores["chrf"], "chrf_signature": scores["chrf_signature"]}
