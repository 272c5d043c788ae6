"""ULMFiT fine-tuning options: layer groups, discriminative learning rates, gradual unfreezing."""

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_rnn.fine_tuning import GradualUnfreezingCallback, layer_groups
from hf_rnn.models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification
from hf_rnn.tasks import RnnTrainer


@pytest.fixture
def classifier() -> RnnForSequenceClassification:
    config = RnnClassifierConfig(
        vocab_size=50, embedding_size=8, hidden_size=6, num_hidden_layers=2, bidirectional=False, pooling="attention"
    )
    return RnnForSequenceClassification(config)


def names_of(model, group) -> set[str]:
    by_id = {id(parameter): name for name, parameter in model.named_parameters()}
    return {by_id[id(parameter)] for parameter in group}


def test_layer_groups_run_from_the_head_down_to_the_embeddings(classifier):
    groups = [names_of(classifier, group) for group in layer_groups(classifier)]
    assert len(groups) == 4
    assert groups[0] == {name for name, _ in classifier.named_parameters() if not name.startswith("rnn.e")}
    assert all(name.startswith("rnn.encoder.layers.1.") for name in groups[1])
    assert all(name.startswith("rnn.encoder.layers.0.") for name in groups[2])
    assert groups[3] == {"rnn.embeddings.weight"}
    assert sum(len(group) for group in groups) == len(list(classifier.parameters()))


def test_each_group_learns_decay_times_slower_than_the_one_above(classifier, tmp_path):
    arguments = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-2, weight_decay=0.1, use_cpu=True)
    trainer = RnnTrainer(model=classifier, args=arguments, layerwise_lr_decay=2.0)
    optimizer = trainer.create_optimizer()
    rates = {}
    for group in optimizer.param_groups:
        for name in names_of(classifier, group["params"]):
            rates[name] = group["lr"]
            assert group["weight_decay"] == (0.0 if "bias" in name else 0.1)
    assert rates["classifier.weight"] == pytest.approx(1e-2)
    assert rates["rnn.encoder.layers.1.forward_rnn.weight_hh_l0"] == pytest.approx(1e-2 / 2)
    assert rates["rnn.encoder.layers.0.forward_rnn.weight_hh_l0"] == pytest.approx(1e-2 / 4)
    assert rates["rnn.embeddings.weight"] == pytest.approx(1e-2 / 8)
    assert len(rates) == len(list(classifier.parameters()))


def test_without_decay_the_trainer_builds_its_usual_optimizer(classifier, tmp_path):
    arguments = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-2, use_cpu=True)
    optimizer = RnnTrainer(model=classifier, args=arguments).create_optimizer()
    assert {group["lr"] for group in optimizer.param_groups} == {1e-2}


def test_gradual_unfreezing_opens_one_more_group_every_n_steps(classifier, tmp_path):
    callback = GradualUnfreezingCallback(every_steps=3)
    arguments, control = TrainingArguments(output_dir=str(tmp_path), use_cpu=True), TrainerControl()
    state = TrainerState()
    trainable_groups = []
    for step in (0, 2, 3, 6, 9, 30):
        state.global_step = step
        callback.on_step_begin(arguments, state, control, model=classifier)
        trainable_groups.append(
            [all(parameter.requires_grad for parameter in group) for group in layer_groups(classifier)]
        )
    assert trainable_groups == [
        [True, False, False, False],
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
        [True, True, True, True],
    ]
    state.global_step = 0
    callback.on_step_begin(arguments, state, control, model=classifier)
    callback.on_train_end(arguments, state, control, model=classifier)
    assert all(parameter.requires_grad for parameter in classifier.parameters())


def test_gradual_unfreezing_needs_a_positive_step_count():
    with pytest.raises(ValueError, match="gradual_unfreezing_steps"):
        GradualUnfreezingCallback(every_steps=0)
