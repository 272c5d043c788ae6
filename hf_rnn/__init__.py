"""hf_rnn: classic recurrent sequence models as native Hugging Face transformers models.

Importing the package registers its configs and models with the transformers Auto classes.
"""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .models.rnn_classifier import (
    RnnClassifierConfig,
    RnnClassifierModel,
    RnnClassifierPreTrainedModel,
    RnnForSequenceClassification,
)

__version__ = "0.1.0"

AutoConfig.register(RnnClassifierConfig.model_type, RnnClassifierConfig, exist_ok=True)
AutoModel.register(RnnClassifierConfig, RnnClassifierModel, exist_ok=True)
AutoModelForSequenceClassification.register(RnnClassifierConfig, RnnForSequenceClassification, exist_ok=True)

__all__ = [
    "RnnClassifierConfig",
    "RnnClassifierModel",
    "RnnClassifierPreTrainedModel",
    "RnnForSequenceClassification",
]
