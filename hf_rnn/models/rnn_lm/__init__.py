from .configuration_rnn_lm import RnnLmConfig
from .modeling_rnn_lm import RnnForCausalLM, RnnLmCache, RnnLmModel, RnnLmPreTrainedModel

__all__ = ["RnnForCausalLM", "RnnLmCache", "RnnLmConfig", "RnnLmModel", "RnnLmPreTrainedModel"]
