"""Corpus chrF as an `evaluate` metric: `hf_rnn.metrics.load_metric("chrf")`, or `evaluate.load(<this folder>)`."""

import datasets
import evaluate
import sacrebleu

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
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions: list[str], references: list) -> dict:
        references = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
        if len({len(refs) for refs in references}) > 1:
            raise ValueError("chrf needs the same number of references for every prediction.")
        metric = sacrebleu.metrics.CHRF()
        output = metric.corpus_score(predictions, [list(stream) for stream in zip(*references)])
        return {
            "score": output.score,
            "char_order": output.char_order,
            "word_order": output.word_order,
            "beta": output.beta,
        }
