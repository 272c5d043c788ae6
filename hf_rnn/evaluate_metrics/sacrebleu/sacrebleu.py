"""Corpus sacreBLEU as an `evaluate` metric: `hf_rnn.metrics.load_metric("sacrebleu")`, or `evaluate.load(<folder>)`."""

import datasets
import evaluate

from hf_rnn.metrics import translation_metrics

CITATION = """@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}"""


class Sacrebleu(evaluate.Metric):
    """BLEU (13a tokenisation, cased) of detokenised hypotheses against one reference each, with its signature."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus BLEU computed by sacreBLEU with its default settings, rounded to 2 decimals.",
            citation=CITATION,
            inputs_description="predictions: detokenised hypotheses; references: one detokenised reference each.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float | str]:
        scores = translation_metrics(predictions, references)
        return {"bleu": scores["bleu"], "bleu_signature": scores["bleu_signature"]}
