"""Each modeling file is self-contained (so it can ship as Hub remote code), and so is the demo page (it ships as a
Space's app.py); shared pieces are copied and marked `# Copied from <module>.<name>`. This test keeps every copy
identical to its original."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hf_rnn"
COPY_MARK = re.compile(r"^# Copied from (hf_rnn[\w.]*)\.(\w+)$", re.MULTILINE)


def copied_objects() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted([*PACKAGE.glob("models/*/*.py"), PACKAGE / "demo" / "app.py"]):
        for match in COPY_MARK.finditer(path.read_text(encoding="utf-8")):
            copy_module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
            found.append((copy_module, match.group(1), match.group(2)))
    return found


def source_of(module_name: str, name: str) -> str:
    """The source of the module-level function, class or constant `name`, read from the module's file without
    importing it (the demo page imports gradio, an optional extra)."""
    path = Path(importlib.util.find_spec(module_name).origin)
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        targets = [target.id for target in getattr(node, "targets", []) if isinstance(target, ast.Name)]
        if getattr(node, "name", None) == name or name in targets:
            first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
            return "\n".join(text.splitlines()[first - 1 : node.end_lineno])
    raise AssertionError(f"{name} not found in {module_name}")


def test_copies_are_marked():
    assert len(copied_objects()) >= 7


@pytest.mark.parametrize(("copy_module", "original_module", "name"), copied_objects())
def test_copy_matches_original(copy_module, original_module, name):
    assert source_of(copy_module, name) == source_of(original_module, name), (
        f"{copy_module}.{name} differs from {original_module}.{name}: update the copy"
    )
