"""ULMFiT's fine-tuning practices for a pretrained encoder (Howard & Ruder 2018), as recipe options.

A model's parameters form layer groups, from the top: the task head (everything outside the encoder), then the
recurrent layers from the last to the first, then the embeddings (`layer_groups`, by parameter name: hf_rnn's
families name them `rnn.embeddings.*` and `rnn.encoder.layers.{i}.*`).

- Discriminative learning rates (`training.layerwise_lr_decay: 2.6`): group `g` (0 = the head) learns at
  `learning_rate / decay**g`; the schedule scales every group alike.
- Gradual unfreezing (`training.gradual_unfreezing_steps: N`): training starts with the head alone and unfreezes one
  more group every N optimizer steps.
- Slanted triangular learning rates are the linear schedule with a short warm-up (`lr_scheduler_type: linear`,
  `warmup_steps: 0.1`), so no option of their own.
"""

import re

from torch import nn
from transformers import Trainer, TrainerCallback

LAYER_NAME = re.compile(r"^rnn\.encoder\.layers\.(\d+)\.")
EMBEDDINGS_PREFIX = "rnn.embeddings."


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """Every parameter (frozen ones too) in groups from the top (head) to the bottom (embeddings); empty groups are
    left out."""
    head, embeddings, layers = [], [], {}
    for name, parameter in model.named_parameters():
        match = LAYER_NAME.match(name)
        if match:
            layers.setdefault(int(match.group(1)), []).append(parameter)
        elif name.startswith(EMBEDDINGS_PREFIX):
            embeddings.append(parameter)
        else:
            head.append(parameter)
    groups = [head, *(layers[index] for index in sorted(layers, reverse=True)), embeddings]
    return [group for group in groups if group]


class DiscriminativeLearningRateMixin:
    """For a `Trainer` subclass: with `layerwise_lr_decay` set, one optimizer parameter group per layer group, each
    learning `decay` times slower than the one above it (weight decay as the Trainer applies it: not on biases)."""

    def __init__(self, *args, layerwise_lr_decay: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.layerwise_lr_decay = layerwise_lr_decay

    def create_optimizer(self, model=None):
        if self.layerwise_lr_decay is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = model if model is not None else self.model
        decay_names = set(self.get_decay_parameter_names(model))
        names = {id(parameter): name for name, parameter in model.named_parameters()}
        optimizer_class, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        parameter_groups = []
        for depth, group in enumerate(layer_groups(model)):
            learning_rate = self.args.learning_rate / self.layerwise_lr_decay**depth
            decayed = [parameter for parameter in group if names[id(parameter)] in decay_names]
            plain = [parameter for parameter in group if names[id(parameter)] not in decay_names]
            for parameters, weight_decay in ((decayed, self.args.weight_decay), (plain, 0.0)):
                if parameters:
                    parameter_groups.append({"params": parameters, "lr": learning_rate, "weight_decay": weight_decay})
        self.optimizer = optimizer_class(parameter_groups, **optimizer_kwargs)
        return self.optimizer


class GradualUnfreezingCallback(TrainerCallback):
    """Trains the head alone at first and unfreezes one more layer group every `every_steps` optimizer steps."""

    def __init__(self, every_steps: int):
        if every_steps < 1:
            raise ValueError(f"`training.gradual_unfreezing_steps` must be >= 1, got {every_steps}.")
        self.every_steps = every_steps

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        unfrozen = 1 + state.global_step // self.every_steps
        for depth, group in enumerate(layer_groups(model)):
            for parameter in group:
                parameter.requires_grad_(depth < unfrozen)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        for parameter in model.parameters():
            parameter.requires_grad_(True)
