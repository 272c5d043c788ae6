"""The built wheel carries everything the package reads at run time (a non-editable install has no repository)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hf_rnn.families import FAMILIES

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("hf_rnn-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_card_templates_metrics_sample_data_and_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("rnn_classifier.md", "rnn_seq2seq.md"):
        assert f"hf_rnn/model_cards/{template}" in names  # before: read from the repository, lost after `pip install .`
    assert {
        "hf_rnn/evaluate_metrics/sacrebleu/sacrebleu.py",
        "hf_rnn/sample_data/imdb/train.parquet",
        "hf_rnn/groupings/imdb_movies.txt.gz",
    } <= names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


@pytest.mark.slow
def test_model_card_renders_from_the_unpacked_wheel(wheel, tmp_path):
    """The wheel's own copy of hf_rnn (not this checkout) finds its card templates."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import hf_rnn, hf_rnn.model_card as card; "
        f"assert hf_rnn.__file__.startswith({str(site)!r}), hf_rnn.__file__; "
        "print(sorted(path.name for path in card.TEMPLATE_DIR.glob('*.md')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site)},
        cwd=tmp_path,  # not the checkout, whose hf_rnn/ would come first on sys.path
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(sorted(f"{family.model_type}.md" for family in FAMILIES))


def test_scoring_and_translating_do_not_load_the_training_path():
    """`hf-rnn evaluate` / `translate` / `classify` read a saved model; the command line and the scoring code must not
    import the Trainer path (hf_rnn's or transformers') to do so."""
    script = (
        "import sys, hf_rnn.evaluation, hf_rnn.translation, hf_rnn.plotting; "
        "from hf_rnn.commands import build_parser; build_parser(); "
        "loaded = ('hf_rnn.training', 'hf_rnn.tasks', 'transformers.trainer', 'transformers.trainer_seq2seq'); "
        "print(sorted(name for name in loaded if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
