"""Loading datasets from the Hub, a local folder or files, or parquet copies in the Hub datasets' schemas.

`data.dataset` names a Hub dataset (`stanfordnlp/imdb`, `bentrevett/multi30k`, `wmt/wmt14`) or a local folder or
file that `datasets.load_dataset` reads (jsonl, csv, parquet; split names from the file names: `train`, `val` /
`validation`, `test`), for instance a downloaded snapshot of the Hub repository. `data.local_name` names a folder
under a data directory laid out like `shared/data`: `<data_dir>/<local_name>/<split>.parquet`; the data directory
comes from `--data-dir`, else `$HF_RNN_DATA_DIR`, and `sample` names the small real slices that ship inside this
package. Offline without a local copy, loading fails at once with a message saying what to do.

Translation data comes in several shapes; all are read into one internal form, a `translation` column of
`{source_lang: text, target_lang: text}` (the `wmt/wmt14` schema): see `translation_pairs`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset

from .errors import HfRnnError
from .groupings import example_groups, shipped_groupings
from .network import hub_is_offline

SAMPLE_DATA_DIR = Path(__file__).parent / "sample_data"
DATA_DIR_ENV = "HF_RNN_DATA_DIR"
# A shipped grouping may miss a few texts of a copy of its dataset (edited reviews); more means another dataset.
MAX_UNGROUPED_SHARE = 0.01


class DataError(HfRnnError, RuntimeError):
    """A dataset could not be found or has the wrong shape; the message says how to fix it."""


@dataclass
class DataConfig:
    """The `data` section of a recipe.

    Args:
        dataset: Hub dataset id, used when no data directory is given.
        dataset_config: Hub dataset configuration name (e.g. `de-en` for `wmt/wmt14`).
        local_name: folder under the data directory holding `<split>.parquet` files.
        train_split / validation_split / test_split: split names; `a+b` concatenates splits `a` and `b` (the
            `datasets` split syntax), and in a data directory `other/split` reads another dataset's file. With `validation_split: null` a validation set of `validation_size`
            examples is carved from train with `seed`.
        validation_size: size of the carved validation set (a count, or a fraction if < 1).
        validation_groups: carve whole groups rather than single examples, so that no group has examples on
            both sides: a column of the training split holding a group id, or a grouping that ships with
            hf_rnn (`imdb_movies`: the reviews of one movie; see `hf_rnn.groupings`). None: single examples.
        text_column / label_column: classification columns.
        language: the language of the classification texts (an ISO 639-1 code), for the model card.
        source_lang / target_lang: translation direction: the languages' keys in a `translation` column, or
            (flat datasets such as `bentrevett/multi30k`) the names of the source and target columns.
        source_column / target_column: flat source and target text columns with other names (`src` / `tgt`);
            default: found by the rule in `translation_pairs`.
        max_train_samples / max_eval_samples / max_test_samples: optional caps (first N after shuffling).
        training_eval_samples: evaluations during training score a fixed subset of this many validation examples;
            the final evaluation scores the whole validation set (None: the whole set every time).
        seed: seed of the validation carve and of the shuffling before caps.
    """

    dataset: str = "stanfordnlp/imdb"
    dataset_config: str | None = None
    local_name: str = "imdb"
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str = "test"
    validation_size: float = 2500
    validation_groups: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    language: str = "en"
    source_lang: str = "de"
    target_lang: str = "en"
    source_column: str | None = None
    target_column: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_test_samples: int | None = None
    training_eval_samples: int | None = None
    seed: int = 42


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The data directory to read from: the argument, else `$HF_RNN_DATA_DIR`, else None (use the Hub)."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if value in (None, ""):
        return None
    path = SAMPLE_DATA_DIR if str(value) == "sample" else Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {str(path)!r} does not exist (from --data-dir or ${DATA_DIR_ENV}).")
    return path


def split_parts(split: str) -> list[str]:
    """The files a split name stands for: `newstest2011+newstest2012` is both, concatenated in that order (the
    `datasets` split syntax; a Hub split name with `+` is passed to `datasets` as it is)."""
    return [part.strip() for part in split.split("+") if part.strip()]


def split_file(data_dir: Path, local_name: str, part: str) -> Path:
    """`<data_dir>/<local_name>/<part>.parquet`; a part naming a folder (`tatoeba/test`) is read from that folder of
    the data directory instead, so a split can mix datasets of the same schema."""
    return data_dir / f"{part}.parquet" if "/" in part else data_dir / local_name / f"{part}.parquet"


def load_split_files(data_dir: Path, local_name: str, splits: list[str]) -> DatasetDict:
    """Read `<data_dir>/<local_name>/<split>.parquet` for each split (several files for a `a+b` split name)."""
    files = {split: [split_file(data_dir, local_name, part) for part in split_parts(split)] for split in splits}
    missing = [str(path) for paths in files.values() for path in paths if not path.is_file()]
    if missing:
        available = sorted(p.stem for p in (data_dir / local_name).glob("*.parquet"))
        raise DataError(
            f"missing data file(s): {', '.join(missing)}. Available splits in {data_dir / local_name}: "
            f"{available or 'none'}. Check `data.local_name` and the split names, or --data-dir."
        )
    # `datasets` names splits with word characters only: load under positional names, return under the asked ones.
    keyed = {f"split{index}": paths for index, paths in enumerate(files.values())}
    found = load_dataset("parquet", data_files={key: [str(path) for path in paths] for key, paths in keyed.items()})
    return DatasetDict({split: found[key] for split, key in zip(files, keyed)})


def load_hub_splits(dataset: str, dataset_config: str | None, splits: list[str]) -> DatasetDict:
    """Load splits of a Hub dataset, failing at once (not after retries) when the Hub is unreachable.

    Split names of the local files that the Hub dataset names differently (`newstest2014` is `wmt/wmt14`'s
    `test`) are translated, and the result is keyed by the names asked for.
    """
    if hub_is_offline():
        raise DataError(
            f"cannot load {dataset!r} from the Hugging Face Hub: offline (HF_HUB_OFFLINE set or the Hub is "
            f"unreachable). Point --data-dir or ${DATA_DIR_ENV} at a folder with <name>/<split>.parquet files "
            "in the same schema (for example ../shared/data), or use --data-dir sample for the bundled slices."
        )
    aliases = HUB_SPLIT_ALIASES.get(dataset, {})
    return DatasetDict(
        {split: load_dataset(dataset, dataset_config, split=aliases.get(split, split)) for split in splits}
    )


LOCAL_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def local_dataset_path(config: DataConfig) -> Path | None:
    """`data.dataset` as an existing local folder or file (its `dataset_config` subfolder if it has one), else None."""
    path = Path(config.dataset).expanduser()
    if not path.exists():
        return None
    if path.is_dir() and config.dataset_config and (path / config.dataset_config).is_dir():
        return path / config.dataset_config  # a snapshot of a Hub repo with one folder per config (wmt14's de-en/)
    return path


def load_local_dataset(path: Path, splits: list[str]) -> DatasetDict:
    """Read a local folder (splits from file names) or one file (its `train` split) with `datasets`, offline."""
    try:
        if path.is_file():
            builder = LOCAL_BUILDERS.get(path.suffix)
            if builder is None:
                raise DataError(
                    f"cannot read {str(path)!r}: use a {', '.join(sorted(LOCAL_BUILDERS))} file or a folder."
                )
            found = load_dataset(builder, data_files={"train": str(path)})
        else:
            found = load_dataset(str(path))
    except (ValueError, FileNotFoundError) as error:  # no data files, mixed formats
        raise DataError(f"cannot read the dataset in {str(path)!r}: {error}") from error
    missing = [split for split in splits if split not in found]
    if missing:
        raise DataError(
            f"split(s) {missing} not found in {str(path)!r}, which has {sorted(found)} (named after its files: "
            "train, val/validation/dev, test). Set `data.train_split` / `data.validation_split` / `data.test_split`."
        )
    return DatasetDict({split: found[split] for split in splits})


def load_splits(config: DataConfig, data_dir: str | os.PathLike | None, splits: list[str]) -> tuple[DatasetDict, str]:
    """The named splits, from the data directory, else a local `data.dataset`, else the Hub; and where from."""
    resolved_dir = resolve_data_dir(data_dir)
    if resolved_dir is not None:
        return load_split_files(resolved_dir, config.local_name, splits), str(resolved_dir / config.local_name)
    local = local_dataset_path(config)
    if local is not None:
        return load_local_dataset(local, splits), str(local)
    return load_hub_splits(config.dataset, config.dataset_config, splits), config.dataset


FLAT_PAIR_COLUMNS = (("src", "tgt"), ("source", "target"))


def pair_columns(split: Dataset, config: DataConfig) -> tuple[str, str] | None:
    """The flat (source, target) columns of a split, or None when it has a `translation` column to use as it is."""
    columns = split.column_names
    if config.source_column or config.target_column:
        chosen = (config.source_column or config.source_lang, config.target_column or config.target_lang)
    elif "translation" in columns:
        return None
    elif config.source_lang in columns and config.target_lang in columns:
        chosen = (config.source_lang, config.target_lang)
    else:
        chosen = next((pair for pair in FLAT_PAIR_COLUMNS if set(pair) <= set(columns)), None)
    if chosen is None or not set(chosen) <= set(columns):
        raise DataError(
            f"cannot find the sentence pairs among the columns {columns}: translation data needs a `translation` "
            f"column of {{lang: text}} pairs, flat columns named by the languages ({config.source_lang!r}, "
            f"{config.target_lang!r}: set `data.source_lang` / `data.target_lang`), `src`/`tgt` or `source`/`target` "
            "columns, or the columns set with `data.source_column` / `data.target_column`."
        )
    return chosen


def translation_pairs(split: Dataset, config: DataConfig) -> Dataset:
    """The split with its sentence pairs in a `translation` column of `{source_lang: .., target_lang: ..}` dicts.

    Rule: `data.source_column` / `data.target_column` when set; else an existing `translation` column; else flat
    columns named by the languages (`bentrevett/multi30k`: `de`, `en`); else `src`/`tgt` or `source`/`target`.
    """
    columns = pair_columns(split, config)
    if columns is None:
        return split
    source, target = columns
    languages = (config.source_lang, config.target_lang)
    return split.map(
        lambda batch: {"translation": [dict(zip(languages, pair)) for pair in zip(batch[source], batch[target])]},
        batched=True,
        remove_columns=split.column_names,
        desc="Reading sentence pairs",
    )


def check_columns(splits: DatasetDict, required: list[str], origin: str) -> None:
    for name, split in splits.items():
        missing = [column for column in required if column not in split.column_names]
        if missing:
            raise DataError(
                f"{origin} split {name!r} lacks column(s) {missing}; it has {split.column_names}. "
                "Set `data.text_column` / `data.label_column`, or fix the file."
            )


def take(split: Dataset, limit: int | None, seed: int) -> Dataset:
    """The first `limit` rows after a seeded shuffle (all rows, unshuffled, when `limit` is None)."""
    if limit is None or limit >= len(split):
        return split
    return split.shuffle(seed=seed).select(range(limit))


def group_ids(train: Dataset, config: DataConfig) -> list:
    """The group of each training example under `config.validation_groups` (a column or a shipped grouping)."""
    name = config.validation_groups
    if name in train.column_names:
        return train[name]
    if name not in shipped_groupings():
        raise DataError(
            f"`data.validation_groups: {name}` is neither a column of the training split ({train.column_names}) "
            f"nor a grouping that ships with hf_rnn ({shipped_groupings()})."
        )
    groups, unknown = example_groups(train[config.text_column], name)
    if unknown > MAX_UNGROUPED_SHARE * len(train):
        raise DataError(
            f"grouping {name!r} does not match this data: {unknown} of {len(train)} texts in column "
            f"{config.text_column!r} are not in it. Use it with the dataset it was built for, or set "
            "`data.validation_groups: null`."
        )
    return groups


def carve_validation(train: Dataset, config: DataConfig) -> tuple[Dataset, Dataset]:
    """Split `validation_size` examples (or whole groups, until at least that many) off the training split."""
    size = config.validation_size if config.validation_size < 1 else int(config.validation_size)
    if config.validation_groups is None:
        carved = train.train_test_split(test_size=size, seed=config.seed, shuffle=True)
        return carved["train"], carved["test"]
    target = size if size >= 1 else round(size * len(train))
    rows_by_group: dict = {}
    for row, group in enumerate(group_ids(train, config)):
        rows_by_group.setdefault(group, []).append(row)
    order = list(rows_by_group)
    np.random.default_rng(config.seed).shuffle(order)
    held_out: list[int] = []
    for group in order:
        if len(held_out) >= target:
            break
        held_out.extend(rows_by_group[group])
    if len(held_out) >= len(train):
        raise DataError(f"`data.validation_size` {config.validation_size} leaves no training examples.")
    kept = np.setdiff1d(np.arange(len(train)), held_out)
    return train.select(kept), train.select(sorted(held_out))


def shaped(splits: DatasetDict, config: DataConfig, required_columns: list[str]) -> DatasetDict:
    """Splits in the internal form: a task that requires `translation` gets it built from flat columns."""
    if "translation" not in required_columns:
        return splits
    return DatasetDict({name: translation_pairs(split, config) for name, split in splits.items()})


def load_task_splits(
    config: DataConfig, data_dir: str | os.PathLike | None, required_columns: list[str]
) -> DatasetDict:
    """Load train / validation / test for a recipe, carving validation from train when none is named."""
    splits = [config.train_split, config.test_split] + ([config.validation_split] if config.validation_split else [])
    raw, origin = load_splits(config, data_dir, splits)
    raw = shaped(raw, config, required_columns)
    check_columns(raw, required_columns, origin)

    train = raw[config.train_split]
    if config.validation_split:
        validation = raw[config.validation_split]
    else:
        train, validation = carve_validation(train, config)
    validation = take(validation, config.max_eval_samples, config.seed)
    splits = DatasetDict(
        train=take(train, config.max_train_samples, config.seed),
        validation=take(validation, config.training_eval_samples, config.seed),
        test=take(raw[config.test_split], config.max_test_samples, config.seed),
    )
    if len(splits["validation"]) < len(validation):
        # Evaluations during training use the fixed subset; the final one scores the whole validation set.
        splits["validation_full"] = validation
    return splits


def load_eval_split(config: DataConfig, data_dir: str | os.PathLike | None, split: str, required: list[str]) -> Dataset:
    """Load one named split (any file in the local folder, or a Hub split) for evaluation."""
    raw, origin = load_splits(config, data_dir, [split])
    raw = shaped(raw, config, required)
    check_columns(raw, required, origin)
    return raw[split]


def load_eval_files(config: DataConfig, files: list[str | os.PathLike], required: list[str]) -> Dataset:
    """The examples of local data files (parquet, jsonl/json or csv; several are concatenated in order), shaped like
    a split of the recipe's dataset (`hf-rnn evaluate --data-files`)."""
    paths = [Path(file).expanduser() for file in files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise DataError(f"data file(s) not found: {', '.join(missing)}.")
    builders = {LOCAL_BUILDERS.get(path.suffix) for path in paths}
    if None in builders or len(builders) != 1:
        raise DataError(
            f"--data-files takes files of one format ({', '.join(sorted(LOCAL_BUILDERS))}), got {[p.name for p in paths]}."
        )
    try:
        found = load_dataset(builders.pop(), data_files={"eval": [str(path) for path in paths]})
    except (ValueError, FileNotFoundError) as error:
        raise DataError(f"cannot read {[str(path) for path in paths]}: {error}") from error
    found = shaped(found, config, required)
    check_columns(found, required, ", ".join(str(path) for path in paths))
    return found["eval"]


# Named datasets for `hf-rnn evaluate --dataset NAME`: the Hub id for users, the local folder for us, and the
# Hub split that holds a local file's content where their names differ (newstest2014 is wmt14's `test`).
DATASET_PRESETS: dict[str, DataConfig] = {
    "imdb": DataConfig(dataset="stanfordnlp/imdb", local_name="imdb"),
    "multi30k": DataConfig(dataset="bentrevett/multi30k", local_name="multi30k", validation_split="validation"),
    "wmt14": DataConfig(dataset="wmt/wmt14", dataset_config="de-en", local_name="wmt-newstest"),
}
HUB_SPLIT_ALIASES: dict[str, dict[str, str]] = {
    "wmt/wmt14": {"newstest2013": "validation", "newstest2014": "test"},
}
