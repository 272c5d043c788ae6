"""The speed benchmark runs and reports sanely at toy sizes. Timings are never asserted here: a benchmark is not a
test; these check that every key is present, every rate is finite and positive, and the equivalence checks hold."""

import json
import math

import pytest
import torch

from hf_rnn.commands import build_parser
from hf_rnn.commands import main as cli_main
from hf_rnn.lab.benchmark import (
    BenchmarkSettings,
    ClassifierBatch,
    TimedPath,
    build_classifier,
    length_grouped_batches,
    ours_classifier_loss,
    run_benchmark,
    time_interleaved,
)
from hf_rnn.lab.references import PackedReferenceClassifier, copy_classifier_weights, packed_reference_loss
from hf_rnn.lab.report import format_table

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes


@pytest.fixture(scope="module")
def tiny_results() -> dict:
    return run_benchmark(BenchmarkSettings.tiny(), log=lambda message: None)


def positive_rates(section: dict) -> list[float]:
    return [
        value
        for row in section.values()
        if isinstance(row, dict)
        for key, value in row.items()
        if key.endswith("_per_s")
    ]


def test_every_section_reports_finite_positive_rates_and_ratios(tiny_results):
    for section, paths in {
        "classifier": ["ours", "ours_same_batch", "padded_reference", "packed_reference"],
        "seq2seq": [
            "ours_bahdanau_input_feeding",
            "ours_luong_fast_path",
            "ours_bahdanau_input_feeding_same_batch",
            "ours_luong_fast_path_same_batch",
            "tutorial_reference",
        ],
        "decoding": ["per_sentence_greedy_reference", "ours_batched_greedy", "ours_batched_beam5"],
    }.items():
        results = tiny_results[section]
        for path in paths:
            assert results[path]["median_s"] > 0
            memory = results[path]["peak_rss_growth_mib"]
            assert memory is None or (math.isfinite(memory) and memory >= 0)
        rates = positive_rates(results)
        assert len(rates) >= 2 * len(paths)
        assert all(math.isfinite(rate) and rate > 0 for rate in rates)
        assert results["ratios"] and all(math.isfinite(r) and r > 0 for r in results["ratios"].values())
    flops = tiny_results["classifier"]["flops"]
    assert 0 < flops["fraction_of_matmul"] < 10 and flops["matmul_gflop_per_s_at_these_shapes"] > 0
    assert "skipped" in tiny_results["ddp"]


def test_equivalence_checks_hold(tiny_results):
    assert tiny_results["classifier"]["equivalence"]["ours_equals_packed"]
    assert tiny_results["seq2seq"]["equivalence"]["bahdanau_equals_reference"]
    assert tiny_results["decoding"]["equivalence"]["batched_greedy_equals_per_sentence"]


def test_targets_table_and_json(tiny_results):
    names = [row["name"] for row in tiny_results["targets"]]
    assert len(names) == 10 and any("FLOP" in name for name in names)
    table = format_table(tiny_results)
    assert "tutorial_reference" in table and "DDP: skipped" in table
    json.loads(json.dumps(tiny_results))  # plain JSON, no tensors


def test_ours_and_packed_reference_give_the_same_loss_on_the_same_batch():
    settings = BenchmarkSettings.tiny()

    class Tokenizer:
        pad_token_id = 0

        def __len__(self):
            return 50

    generator = torch.Generator().manual_seed(0)
    examples = [
        (torch.randint(1, 50, (length,), generator=generator).tolist(), length % 2) for length in (9, 3, 6, 1, 7)
    ]
    batch: ClassifierBatch = length_grouped_batches(examples[::-1], 5, 0)[0]
    ours = build_classifier(settings, Tokenizer()).eval()
    reference = PackedReferenceClassifier(50, settings.classifier_embedding_size, settings.classifier_hidden_size, 2, 0)
    copy_classifier_weights(reference, ours)
    reference.eval()
    ours_loss, reference_loss = ours_classifier_loss(ours, batch), packed_reference_loss(reference, batch)
    assert abs(ours_loss.item() - reference_loss.item()) < 1e-5
    ours_loss.backward(), reference_loss.backward()
    layer = ours.rnn.encoder.layers[0]
    for ours_grad, reference_grad in [
        (ours.classifier.weight.grad, reference.fc.weight.grad),
        (layer.forward_rnn.weight_hh_l0.grad, reference.lstm.weight_hh_l0.grad),
        (layer.backward_rnn.weight_ih_l0.grad, reference.lstm.weight_ih_l0_reverse.grad),
    ]:
        torch.testing.assert_close(ours_grad, reference_grad, atol=1e-6, rtol=1e-4)


def test_time_interleaved_alternates_drops_warmup_and_runs_references_first():
    calls = []
    paths = {
        "a": TimedPath(lambda: calls.append("a"), warmup=1, repeats=2),
        "b": TimedPath(lambda: calls.append("b"), warmup=1, repeats=2),
        "slow": TimedPath(lambda: calls.append("slow"), warmup=0, repeats=1),
    }
    seconds, memory = time_interleaved(paths)
    assert calls == ["a", "b", "slow", "b", "a", "a", "b"]
    assert {name: len(runs) for name, runs in seconds.items()} == {"a": 2, "b": 2, "slow": 1}
    assert memory == {}


def test_cli_and_script_parse_the_options(tmp_path):
    args = build_parser().parse_args(["benchmark", "--quick", "--threads", "1", "--json", "x.json", "--only", "ddp"])
    assert args.quick and args.threads == 1 and args.json_path == "x.json" and args.only == ["ddp"]
    with pytest.raises(SystemExit):
        cli_main(["benchmark", "--only", "nothing"])


@pytest.mark.slow
def test_ddp_part_runs_two_processes():
    results = run_benchmark(BenchmarkSettings.tiny(parts=("ddp",)), log=lambda message: None)
    ddp = results["ddp"]
    assert ddp["one_process"]["tokens_per_s"] > 0 and ddp["2_processes"]["tokens_per_s"] > 0
    (ratio,) = ddp["ratios"].values()
    assert math.isfinite(ratio) and ratio > 0
    assert [row["name"] for row in results["targets"]] == ["DDP 2x1_vs_1x1 tokens/s"]
