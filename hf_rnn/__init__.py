"""hf_rnn: classic recurrent sequence models as native Hugging Face transformers models.

Importing the package registers its configs and models with the transformers Auto classes.
"""

__version__ = "0.1.0"  # before the imports: hf_rnn.model_card reads it while the package initialises

from .families import register_families
from .hub import install_model_hooks
from .models.rnn_classifier import (
    RnnClassifierConfig,
    RnnClassifierModel,
    RnnClassifierPreTrainedModel,
    RnnForSequenceClassification,
)
from .models.rnn_lm import RnnForCausalLM, RnnLmCache, RnnLmConfig, RnnLmModel, RnnLmPreTrainedModel
from .models.rnn_seq2seq import (
    RnnSeq2SeqCache,
    RnnSeq2SeqConfig,
    RnnSeq2SeqForConditionalGeneration,
    RnnSeq2SeqModel,
    RnnSeq2SeqPreTrainedModel,
)
from .pipelines import RnnTranslationPipeline, register_pipelines

register_families()
register_pipelines()
install_model_hooks()

__all__ = [
    "RnnClassifierConfig",
    "RnnClassifierModel",
    "RnnClassifierPreTrainedModel",
    "RnnForCausalLM",
    "RnnForSequenceClassification",
    "RnnLmCache",
    "RnnLmConfig",
    "RnnLmModel",
    "RnnLmPreTrainedModel",
    "RnnSeq2SeqCache",
    "RnnTranslationPipeline",
    "RnnSeq2SeqConfig",
    "RnnSeq2SeqForConditionalGeneration",
    "RnnSeq2SeqModel",
    "RnnSeq2SeqPreTrainedModel",
]
