"""Model cards (README.md beside the weights) rendered from a run directory's files.

`hf_rnn/model_cards/<family>.md` are Jinja templates in the format of `huggingface_hub.ModelCard.from_template`. They are
filled from the run's `config.json`, `recipe.yaml`, `run_info.json` (command, data source, split sizes, hardware
and versions, written by `write_run_info` when training starts), the results of `training.train`, and any
`eval_<name>.json` written by `hf-rnn evaluate --json`. The YAML header carries `model-index` metadata whose
numbers are exactly those of the JSON files.
"""

import importlib.metadata
import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

from . import __version__ as hf_rnn_version
from .data import DATASET_PRESETS, SAMPLE_DATA_DIR, resolve_data_dir
from .families import family_of
from .metrics import translation_signatures
from .recipe import DEFAULT_SEED, Recipe
from .runs import EVAL_RESULTS_FILE, RUN_INFO_FILE, TEST_RESULTS_FILE, Run, read_json

# Package data (pyproject.toml), so a wheel install has the templates too.
TEMPLATE_DIR = Path(__file__).resolve().parent / "model_cards"
VERSIONED_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "sacrebleu")
NOT_RECORDED = "not recorded"

# The card's license: hf_rnn's own (its code ships in the repo, and the weights are released under it too).
CARD_LICENSE = "apache-2.0"
# The text a classifier card offers in the Hub widget.
EXAMPLE_REVIEW = "A moving story, wonderfully acted, with an ending I did not see coming."
# The prompt a language model card offers in the Hub widget.
EXAMPLE_PROMPT = "This movie"
# A sentence per source language for the usage snippets and widget of translation cards.
EXAMPLE_SOURCES = {
    "de": "Ein Hund läuft über eine grüne Wiese.",
    "en": "A dog runs across a green meadow.",
    "fr": "Un chien court dans une prairie verte.",
}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_run_info(output_dir: Path, data_dir: str | os.PathLike | None, split_sizes: dict[str, int]) -> Path:
    """Record how the run was started, on what data, hardware and versions, as `run_info.json`."""
    resolved = resolve_data_dir(data_dir)
    if resolved is None:
        data_source = "hub"
    else:
        data_source = "sample" if resolved == SAMPLE_DATA_DIR else str(resolved)
    program = Path(sys.argv[0]).name
    info = {
        "command": shlex.join([program if program == "hf-rnn" else sys.argv[0], *sys.argv[1:]]),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_source": data_source,
        "split_sizes": split_sizes,
        "hardware": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "gpus": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())],
        },
        "versions": {
            "python": platform.python_version(),
            "hf_rnn": hf_rnn_version,  # importlib.metadata knows no version for an uninstalled checkout
            **{name: importlib.metadata.version(name) for name in VERSIONED_PACKAGES},
        },
    }
    path = Path(output_dir) / RUN_INFO_FILE
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return path


def count_parameters(weights_path: Path) -> int:
    """Number of stored parameters (tied tensors are stored once), read from the safetensors header."""
    if not weights_path.is_file():
        return 0
    with safe_open(str(weights_path), framework="pt") as weights:
        total = 0
        for name in weights.keys():
            count = 1
            for size in weights.get_slice(name).get_shape():
                count *= size
            total += count
        return total


def preset_for(dataset: str) -> tuple[str, str | None]:
    """(Hub id, config) of a dataset named by Hub id or local folder name (as `hf-rnn evaluate` reports it)."""
    for preset in DATASET_PRESETS.values():
        if dataset in (preset.dataset, preset.local_name):
            return preset.dataset, preset.dataset_config
    return dataset, None


def evaluation_sets(output_dir: Path, recipe: Recipe, results: dict[str, Any], versions: dict[str, str]) -> list[dict]:
    """Held-out results: the run's test split, then each `eval_<name>.json` written by `hf-rnn evaluate`.

    Each set: dataset (Hub id), config, split, examples, source file, metric values and sacreBLEU signatures.
    """
    sets = []
    test_values = {key.removeprefix("test_"): value for key, value in results.items() if key.startswith("test_")}
    if test_values:
        signatures = {}
        if "bleu" in test_values:
            # The training metrics keep numbers only. Their settings are those of `translation_metrics`; the
            # version is the sacrebleu that scored the run, not the one rendering the card.
            installed, scored_with = importlib.metadata.version("sacrebleu"), versions.get("sacrebleu")
            signatures = {
                key: value.replace(f"version:{installed}", f"version:{scored_with or installed}")
                for key, value in translation_signatures().items()
            }
        sets.append(
            {
                "dataset": recipe.data.dataset,
                "dataset_config": recipe.data.dataset_config,
                "split": recipe.data.test_split,
                "examples": test_values.get("examples"),
                "source": TEST_RESULTS_FILE,
                "values": test_values,
                "signatures": signatures,
            }
        )
    for path in sorted(output_dir.glob("eval_*.json")):
        scores = read_json(path)
        if "split" not in scores or "dataset" not in scores:
            continue  # eval_results.json: the validation scores of training, reported separately
        dataset, dataset_config = preset_for(scores["dataset"])
        sets.append(
            {
                "dataset": dataset,
                "dataset_config": dataset_config,
                "split": scores["split"],
                "examples": scores.get("examples"),
                "source": path.name,
                "values": scores,
                "signatures": {key: value for key, value in scores.items() if key.endswith("_signature")},
            }
        )
    return sets


def eval_results(model_type: str, sets: list[dict]) -> list[EvalResult]:
    """`model-index` entries: one per evaluation set and reported metric (macro-F1 and signatures as args)."""
    family = family_of(model_type)
    entries = []
    for evaluation in sets:
        for metric in family.card_metrics:
            if metric.key not in evaluation["values"]:
                continue
            signature = evaluation["signatures"].get(f"{metric.key}_signature")
            metric_args = {**metric.args, "signature": signature} if signature else metric.args
            entries.append(
                EvalResult(
                    task_type=family.card_task_type,
                    dataset_type=evaluation["dataset"],
                    dataset_name=evaluation["dataset"],
                    dataset_config=evaluation["dataset_config"],
                    dataset_split=evaluation["split"],
                    # What was measured: bundled slices and `max_*_samples` caps score part of a split.
                    dataset_args={"examples": evaluation["examples"]} if evaluation["examples"] else None,
                    metric_type=metric.metric_type,
                    metric_name=metric.display_name,
                    metric_value=evaluation["values"][metric.key],
                    metric_args=metric_args or None,
                )
            )
    return entries


def result_rows(model_type: str, sets: list[dict], results: dict[str, Any], validation_size: Any) -> list[dict]:
    """Rows of the card's results table: validation (used to pick the checkpoint), then the held-out sets."""
    validation = {
        "dataset": "validation (checkpoint selection)",
        "split": "validation",
        "examples": validation_size if isinstance(validation_size, int) else None,
        "source": EVAL_RESULTS_FILE,
        "values": {key.removeprefix("eval_"): value for key, value in results.items() if key.startswith("eval_")},
    }
    rows = []
    for evaluation in [validation, *sets]:
        for metric in family_of(model_type).card_metrics:
            if metric.key in evaluation["values"]:
                rows.append({**evaluation, "metric": metric.display_name, "value": evaluation["values"][metric.key]})
    return rows


def data_context(recipe: Recipe, run_info: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    data = recipe.data
    source = run_info.get("data_source")
    if source is None:
        read_from = "a source the run did not record (it predates run_info.json)"
    elif source == "hub":
        read_from = f"the Hugging Face Hub (`{data.dataset}`)"
    elif source == "sample":
        read_from = (
            f"the small slices bundled with hf_rnn (`hf_rnn/sample_data/{data.local_name}/<split>.parquet`), "
            "not the full dataset"
        )
    else:
        read_from = f"local parquet copies in the Hub schema (`{source}/{data.local_name}/<split>.parquet`)"
    sizes = run_info.get("split_sizes") or {
        "train": results.get("train_examples", NOT_RECORDED),
        "validation": "an unrecorded number of",
        "test": results.get("test_examples", NOT_RECORDED),
    }
    if data.validation_split:
        validation_origin = f"the `{data.validation_split}` split"
    else:
        validation_origin = f"carved from `{data.train_split}` with seed {data.seed}"
    return {
        "dataset": data.dataset,
        "dataset_config": data.dataset_config,
        "read_from": read_from,
        "sizes": sizes,
        "train_split": data.train_split,
        "test_split": data.test_split,
        "validation_origin": validation_origin,
        "data_dir_flag": "" if source in (None, "hub") else f" --data-dir {source}",
        "source_lang": data.source_lang,
        "target_lang": data.target_lang,
    }


def seed_spread(report: dict[str, Any]) -> dict[str, Any] | None:
    """What a card says about other seeds of its recipe, from a `seeds.json` (`scripts/seed_summary.py`)."""
    if not report.get("runs"):
        return None
    digits = 4 if report.get("kind") == "imdb" else 2
    return {
        "runs": report["runs"],
        "seeds": ", ".join(str(run["training_seed"]) for run in report["runs"]),
        "stats": [
            {key: round(value, digits) if isinstance(value, float) else value for key, value in stats.items()}
            for stats in report["summary"].values()
        ],
    }


def build_model_card(
    output_dir: Path, model_family: str, recipe: Recipe, results: dict[str, Any], repo_id: str | None = None
) -> ModelCard:
    """The card of the run in `output_dir`; usage snippets load `repo_id`, or `output_dir` when it is None."""
    output_dir = Path(output_dir)
    run = Run(output_dir)
    config, run_info = run.config(), run.run_info()
    versions = run_info.get("versions", {})
    sets = evaluation_sets(output_dir, recipe, results, versions)
    model_name = repo_id.split("/")[-1] if repo_id else output_dir.resolve().name
    data = recipe.data
    family = family_of(model_family)
    is_translation = family.task == "translation"
    if is_translation:
        example = EXAMPLE_SOURCES.get(data.source_lang, EXAMPLE_SOURCES["en"])
    else:
        example = EXAMPLE_PROMPT if family.card_task_type == "text-generation" else EXAMPLE_REVIEW
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        license=CARD_LICENSE,
        pipeline_tag=family.card_task_type,
        tags=["hf_rnn", model_family, config.get("cell_type", "rnn"), "custom_code"],
        datasets=[data.dataset],
        language=[data.source_lang, data.target_lang] if is_translation else [data.language],
        widget=[{"text": example}],
        metrics=list(dict.fromkeys(metric.metric_type for metric in family.card_metrics)),
        eval_results=eval_results(model_family, sets) or None,
    )
    hardware = run_info.get("hardware", {})
    data_info = data_context(recipe, run_info, results)
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_DIR / f"{model_family}.md"),
        model_name=model_name,
        model_id=repo_id or str(output_dir),
        config=config,
        labels=", ".join(f"`{label}`" for label in (config.get("id2label") or {}).values()),
        num_parameters=f"{count_parameters(output_dir / 'model.safetensors'):,}",
        data=data_info,
        tokenizer=recipe.tokenizer,
        recipe_yaml=recipe.to_yaml().strip(),
        command=run_info.get("command", NOT_RECORDED),
        started_at=run_info.get("started_at", NOT_RECORDED),
        cpu=hardware.get("cpu", NOT_RECORDED),
        cpu_count=hardware.get("cpu_count", NOT_RECORDED),
        gpus=", ".join(hardware.get("gpus", [])) or "none",
        threads=results.get("threads", NOT_RECORDED),
        world_size=results.get("world_size", NOT_RECORDED),
        wall_time_s=results.get("wall_time_s", NOT_RECORDED),
        train_runtime_s=results.get("train_runtime", NOT_RECORDED),
        epochs=results.get("epoch", NOT_RECORDED),
        peak_rss_mb=results.get("peak_rss_mb", NOT_RECORDED),
        versions=", ".join(f"{name} {version}" for name, version in versions.items()) or NOT_RECORDED,
        result_rows=result_rows(
            model_family, sets, results, data_info["sizes"].get("validation_full", data_info["sizes"].get("validation"))
        ),
        example_source=EXAMPLE_SOURCES.get(data.source_lang, EXAMPLE_SOURCES["en"]),
        num_beams=recipe.options.generation_num_beams,
        max_new_tokens=recipe.options.generation_max_new_tokens,
        seed=recipe.training.get("seed", DEFAULT_SEED),
        bptt=recipe.options.bptt,
        init_from=recipe.model.get("init_from"),
        seed_spread=seed_spread(run.seeds()),
    )


def write_model_card(
    output_dir: Path, model_family: str, recipe: Recipe, results: dict[str, Any], repo_id: str | None = None
) -> Path:
    """Render `hf_rnn/model_cards/<family>.md` for the run in `output_dir` into `output_dir/README.md`."""
    path = Path(output_dir) / "README.md"
    build_model_card(output_dir, model_family, recipe, results, repo_id).save(path)
    return path
