"""`hf-rnn demo`: a Gradio page for trained runs, one tab per run, chosen by the run's family.

`hf_rnn.demo.app` holds the page and its prediction functions (self-contained, so that a Space can ship it);
this module loads run folders or Hub ids the way `hf-rnn classify / translate` do and hands them to it;
`hf_rnn.demo.space` writes a Hugging Face Space for a pushed run. Gradio is an optional extra (`hf_rnn[demo]`).
"""

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import HfRnnError

GRADIO_MISSING = 'the demo needs gradio, an optional extra: pip install "hf_rnn[demo]"'


class DemoError(HfRnnError):
    """The demo or Space cannot be built; the message says why and what to do."""


def require_gradio() -> str:
    """The installed gradio's version; `DemoError` when gradio is not installed."""
    try:
        import gradio
    except ImportError:
        raise DemoError(GRADIO_MISSING) from None
    return gradio.__version__


def run_title(run: str | os.PathLike) -> str:
    """A tab's title: a local run's folder name, or the Hub id."""
    path = Path(run).expanduser()
    return path.resolve().name if path.exists() else str(run)


def load_demo_model(run: str | os.PathLike):
    """The model and tokenizer of a run folder or Hub id, with the task that picks its tab (an `app.DemoModel`)."""
    from ..families import family_of
    from ..loading import load_config, load_model, load_tokenizer
    from .app import TAB_BUILDERS, DemoModel

    family = family_of(load_config(run).model_type)
    if family.task not in TAB_BUILDERS:
        raise DemoError(f"{str(run)!r} is a {family.task} model: the demo has pages for {sorted(TAB_BUILDERS)} only.")
    model = load_model(run, family.head_auto_class)
    return DemoModel(title=run_title(run), task=family.task, model=model, tokenizer=load_tokenizer(run))


def build_demo(runs: Sequence[str | os.PathLike], title: str = "hf_rnn demo"):
    """A `gradio.Blocks` page with one tab per run (local folder or Hub id), in the order given."""
    require_gradio()
    from .app import build_demo as build_page

    if not runs:
        raise DemoError("name at least one run folder or Hub id.")
    return build_page([load_demo_model(run) for run in runs], title=title)
