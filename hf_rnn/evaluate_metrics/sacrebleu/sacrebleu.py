"""Corpus sacreBLEU as an `evaluate` metric: `hf_rnn.metrics.load_metric("sacrebleu")`, or `evaluate.load(<folder>)`."""

import datasets
import evaluate
import sacrebleu

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
            raise ValueError("sacrebleu needs the same number of references for every prediction.")
        streams = [list(stream) for stream in zip(*references)]
        output = sacrebleu.metrics.BLEU().corpus_score(predictions, streams)
        return {
            "score": output.score,
            "counts": output.counts,
            "totals": output.totals,
            "precisions": output.precisions,
            "bp": output.bp,
            "sys_len": output.sys_len,
            "ref_len": output.ref_len,
        }
