"""An `rnn-translation` pipeline for hf_rnn encoder-decoders.

transformers 5 removed its `translation` task and refuses that name before looking at registered pipelines,
so hf_rnn registers its pipeline as `rnn-translation`. After `import hf_rnn`,
`pipeline("rnn-translation", model="runs/m30k-de-en")` returns an `RnnTranslationPipeline`:
`translator("Ein Hund läuft.", num_beams=5)` -> `[{"translation_text": "A dog is running."}]`.
"""

import logging
from typing import Any

from transformers import AutoModelForSeq2SeqLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .tokenization import clean_text, truncated_flags

logger = logging.getLogger(__name__)

TRANSLATION_TASK = "rnn-translation"


class RnnTranslationPipeline(Pipeline):
    """Text in, `[{"translation_text": ...}]` out, through `model.generate` (any generation keyword works).

    Inputs are truncated to the tokenizer's `model_max_length` (with a logged warning); an empty or
    whitespace-only input gives an empty translation; undecodable characters (lone surrogates) become U+FFFD.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, **kwargs) -> tuple[dict, dict, dict]:
        generate_kwargs = dict(kwargs.pop("generate_kwargs", None) or {})
        generate_kwargs.update(kwargs)
        return {}, generate_kwargs, {}

    def preprocess(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(f"translation inputs must be strings, got {type(text).__name__}.")
        text = clean_text(text)
        encoded = self.tokenizer([text], truncation=True, return_tensors="pt")
        if truncated_flags(encoded)[0]:
            logger.warning(
                "input of %d characters truncated to model_max_length=%d tokens: the rest is not translated.",
                len(text),
                self.tokenizer.model_max_length,
            )
        return {"is_empty": not text.strip(), **encoded}

    def _forward(self, model_inputs: dict[str, Any], **generate_kwargs) -> dict[str, Any]:
        if model_inputs.pop("is_empty"):
            return {"output_ids": None}
        return {"output_ids": self.model.generate(**model_inputs, **generate_kwargs)}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, str]]:
        if model_outputs["output_ids"] is None:
            return [{"translation_text": ""}]
        texts = self.tokenizer.batch_decode(model_outputs["output_ids"], skip_special_tokens=True)
        return [{"translation_text": text.strip()} for text in texts]


def register_pipelines() -> None:
    PIPELINE_REGISTRY.register_pipeline(
        TRANSLATION_TASK, pipeline_class=RnnTranslationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
