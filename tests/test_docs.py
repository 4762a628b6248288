"""The docs keep up with the code: every setting appears in docs/configuration.md."""

from pathlib import Path

from ctxbase.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"CTXBASE_{name.upper()}" in docs, f"CTXBASE_{name.upper()} is not documented"


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make serve" in first_screen
    assert "make test" in first_screen
    assert "ctxbase.open(" in first_screen
