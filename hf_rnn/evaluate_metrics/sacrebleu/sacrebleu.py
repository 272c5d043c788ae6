"""Corpus sacreBLEU as an `evaluate` metric: `hf_rnn.metrics.load_metric("sacrebleu")`, or `evaluate.load(<folder>)`."""

import evaluate
import sacrebleu

from hf_rnn.metrics import reference_streams, translation_metric_features

CITATION = """@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}"""


class Sacrebleu(evaluate.Metric):
    """BLEU (sacreBLEU's defaults: 13a tokenisation, cased) of detokenised hypotheses, with the canonical `sacrebleu`
    metric's inputs (one reference string, or a list of references, per hypothesis) and output keys."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus BLEU computed by sacreBLEU with its default settings (the keys of evaluate's sacrebleu).",
            citation=CITATION,
            inputs_description="predictions: detokenised hypotheses; references: a reference, or a list of them, each.",
            features=translation_metric_features(),
        )

    def _compute(self, predictions: list[str], references: list) -> dict:
        output = sacrebleu.metrics.BLEU().corpus_score(predictions, reference_streams(references, "sacrebleu"))
        return {
            "score": output.score,
            "counts": output.counts,
            "totals": output.totals,
            "precisions": output.precisions,
            "bp": output.bp,
            "sys_len": output.sys_len,
            "ref_len": output.ref_len,
        }
