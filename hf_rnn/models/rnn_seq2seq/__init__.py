from .configuration_rnn_seq2seq import RnnSeq2SeqConfig
from .modeling_rnn_seq2seq import (
    RnnSeq2SeqCache,
    RnnSeq2SeqEncoderOutput,
    RnnSeq2SeqForConditionalGeneration,
    RnnSeq2SeqModel,
    RnnSeq2SeqPreTrainedModel,
)

__all__ = [
    "RnnSeq2SeqCache",
    "RnnSeq2SeqConfig",
    "RnnSeq2SeqEncoderOutput",
    "RnnSeq2SeqForConditionalGeneration",
    "RnnSeq2SeqModel",
    "RnnSeq2SeqPreTrainedModel",
]
