"""The docs keep up with the code: every setting appears in docs/configuration.md, and
the README's first screen shows the two commands and an example that runs (the examples
themselves run in test_doc_examples.py)."""

from ctxbase.config import Settings
from tests.markdown_blocks import PYTHON, ROOT, blocks_of

FIRST_SCREEN_LINES = 40


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"CTXBASE_{name.upper()}" in docs, f"CTXBASE_{name.upper()} is not documented"


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:FIRST_SCREEN_LINES])
    assert "make serve" in first_screen
    assert "make test" in first_screen
    assert "ctxbase.open(" in first_screen


def test_readme_first_screen_examples_are_all_run() -> None:
    first = [
        block
        for block in blocks_of(ROOT / "README.md")
        if block.language in PYTHON and block.line <= FIRST_SCREEN_LINES
    ]
    assert any("ctxbase.open(" in block.code for block in first)
    assert any("ctxbase.Client(" in block.code and "api_key=" in block.code for block in first)
    assert all(block.skip_reason is None for block in first), "the first screen must run"
