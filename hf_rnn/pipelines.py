"""The `rnn-translation` pipeline task for hf_rnn encoder-decoders.

transformers 5 removed its `translation` task and refuses that name before looking at registered pipelines,
so hf_rnn registers its pipeline as `rnn-translation`. After `import hf_rnn`,
`pipeline("rnn-translation", model="runs/m30k-de-en")` returns an `RnnTranslationPipeline`:
`translator("Ein Hund läuft.", num_beams=5)` -> `[{"translation_text": "A dog is running."}]`. A saved model also
names the pipeline in its config (`custom_pipelines`), so without hf_rnn
`pipeline("translation", model=..., trust_remote_code=True)` returns the same class from the model's code file.
"""

from transformers import AutoModelForSeq2SeqLM
from transformers.pipelines import PIPELINE_REGISTRY

from .models.rnn_seq2seq.modeling_rnn_seq2seq import RnnTranslationPipeline

TRANSLATION_TASK = "rnn-translation"


def register_pipelines() -> None:
    PIPELINE_REGISTRY.register_pipeline(
        TRANSLATION_TASK, pipeline_class=RnnTranslationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
