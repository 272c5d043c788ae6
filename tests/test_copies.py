"""Each modeling file is self-contained (so it can ship as Hub remote code), and so is the demo page (it ships as a
Space's app.py); shared pieces are copied and marked `# Copied from <module>.<name>`. This test keeps every copy
identical to its original."""

import importlib
import inspect
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
    module = importlib.import_module(module_name)
    value = getattr(module, name)
    if inspect.isfunction(value) or inspect.isclass(value):
        return inspect.getsource(value)
    # A module-level constant: its assignment line(s).
    text = inspect.getsource(module)
    match = re.search(rf"^{name} = .*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{name} not found in {module_name}"
    return match.group(0).strip()


def test_copies_are_marked():
    assert len(copied_objects()) >= 7


@pytest.mark.parametrize(("copy_module", "original_module", "name"), copied_objects())
def test_copy_matches_original(copy_module, original_module, name):
    assert source_of(copy_module, name) == source_of(original_module, name), (
        f"{copy_module}.{name} differs from {original_module}.{name}: update the copy"
    )
