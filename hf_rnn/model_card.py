"""Model cards (README.md beside the weights) filled from a finished run."""

from pathlib import Path
from typing import Any

from .recipe import Recipe

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "model_cards"


def write_model_card(output_dir: Path, model_family: str, recipe: Recipe, results: dict[str, Any]) -> Path:
    """Render `model_cards/<family>.md` with the run's recipe and results into `output_dir/README.md`."""
    template = (TEMPLATE_DIR / f"{model_family}.md").read_text(encoding="utf-8")
    results_rows = "\n".join(f"| {key} | {value} |" for key, value in sorted(results.items()))
    card = template.format(
        dataset=recipe.data.dataset,
        local_name=recipe.data.local_name,
        recipe=recipe.to_yaml().strip(),
        results_table=results_rows,
    )
    path = Path(output_dir) / "README.md"
    path.write_text(card, encoding="utf-8")
    return path
