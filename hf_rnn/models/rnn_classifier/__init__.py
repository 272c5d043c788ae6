from .configuration_rnn_classifier import RnnClassifierConfig
from .modeling_rnn_classifier import RnnClassifierModel, RnnClassifierPreTrainedModel, RnnForSequenceClassification

__all__ = ["RnnClassifierConfig", "RnnClassifierModel", "RnnClassifierPreTrainedModel", "RnnForSequenceClassification"]
