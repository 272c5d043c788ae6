"""Choosing the checkpoint to resume from: the newest *complete* `checkpoint-N` folder.

`Trainer._save_checkpoint` (transformers 5.24) writes straight into `checkpoint-N`, file by file: the model
(`model.safetensors`, `config.json`), then `optimizer.pt`, `scheduler.pt`, `rng_state.pth`, and
`trainer_state.json` last; only then are older checkpoints deleted (`save_total_limit`). Nothing is written to a
temporary name first, so a run killed while saving leaves a newest folder that is partial (files missing, or
the one being written cut short), while the previous checkpoint is still intact. `Trainer`'s own
`resume_from_checkpoint=True` takes the highest-numbered folder whatever its state; `--resume` instead takes the
newest folder that passes `checkpoint_problem`, and says which ones it skipped.
"""

import json
import logging
import os
import re
import zipfile
from pathlib import Path

from .errors import HfRnnError
from .loading import weights_problem

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILES = ("config.json", "trainer_state.json")


class CheckpointError(HfRnnError, RuntimeError):
    """No usable checkpoint to resume from; the message says what was found and what to do."""


def checkpoint_problem(directory: Path) -> str | None:
    """Why training cannot resume from `directory`, or None when it looks complete.

    Checks that the JSON files parse, that the safetensors weights are whole, and that every `*.pt` / `*.pth`
    file (optimizer, scheduler, RNG states; `torch.save` zip archives) has its zip directory, which sits at the
    end of the file and so is missing from a file cut short. `training_args.bin` is never read when resuming.
    """
    for name in STATE_FILES:
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"{name} is not valid JSON (cut short?)"
    problem = weights_problem(directory)
    if problem:
        return problem
    for path in sorted([*directory.glob("*.pt"), *directory.glob("*.pth")]):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return f"{path.name} is corrupt or truncated"
    return None


def checkpoint_folders(output_dir: Path) -> list[Path]:
    """`checkpoint-N` folders in `output_dir`, newest (highest N) first."""
    if not output_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path) for path in output_dir.iterdir() if (match := CHECKPOINT_PATTERN.match(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True) if path.is_dir()]


def latest_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint that passes `checkpoint_problem`, logging every newer one it skips."""
    for folder in checkpoint_folders(output_dir):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        logger.warning("skipping incomplete checkpoint %s: %s", folder, problem)
    return None


def resolve_resume_checkpoint(resume: bool | str | os.PathLike, output_dir: str | os.PathLike) -> str | None:
    """The checkpoint path for `--resume` (True: the newest complete one in `output_dir`; a path: that one)."""
    if resume is False or resume is None:
        return None
    if resume is not True:
        path = Path(resume)
        if not path.is_dir():
            raise CheckpointError(f"--resume {str(resume)!r}: no such checkpoint directory.")
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError(f"--resume {str(resume)!r}: the checkpoint is incomplete ({problem}).")
        logger.info("resuming from %s", path)
        return str(path)
    output_dir = Path(output_dir)
    folders = checkpoint_folders(output_dir)
    found = latest_complete_checkpoint(output_dir)
    if found is None:
        seen = f"only incomplete ones ({', '.join(path.name for path in folders)})" if folders else "none"
        raise CheckpointError(
            f"--resume: no complete checkpoint-N folder in {str(output_dir)!r} (found {seen}). Start the run "
            "without --resume, or pass --resume PATH/TO/checkpoint-N."
        )
    logger.info("resuming from %s", found)
    return str(found)
