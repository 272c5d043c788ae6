"""Corpus chrF as an `evaluate` metric: `hf_rnn.metrics.load_metric("chrf")`, or `evaluate.load(<this folder>)`."""

import evaluate
import sacrebleu

from hf_rnn.metrics import reference_streams, translation_metric_features

CITATION = """@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    pages = "392--395",
}"""


class Chrf(evaluate.Metric):
    """chrF (sacreBLEU's defaults: character 6-grams, beta 2) of detokenised hypotheses, with the canonical `chrf`
    metric's inputs (one reference string, or a list of references, per hypothesis) and output keys."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus chrF computed by sacreBLEU with its default settings (the keys of evaluate's chrf).",
            citation=CITATION,
            inputs_description="predictions: detokenised hypotheses; references: a reference, or a list of them, each.",
            features=translation_metric_features(),
        )

    def _compute(self, predictions: list[str], references: list) -> dict:
        output = sacrebleu.metrics.CHRF().corpus_score(predictions, reference_streams(references, "chrf"))
        return {
            "score": output.score,
            "char_order": output.char_order,
            "word_order": output.word_order,
            "beta": output.beta,
        }
