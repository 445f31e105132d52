"""The configuration reference in docs/operations.md is generated from the Settings class."""

from __future__ import annotations

from service.core import configdoc
from service.core.settings import Settings


def test_the_reference_in_operations_md_is_current() -> None:
    text = configdoc.DOCUMENT.read_text()

    assert configdoc.rewrite(text) == text, "docs/operations.md is stale: run `make docs`"


def test_every_setting_is_described_and_listed_by_its_variable() -> None:
    table = configdoc.reference()

    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"`{configdoc.variable(name, field)}`" in table


def test_secrets_show_no_default() -> None:
    row = next(line for line in configdoc.reference().splitlines() if "`HOSTMASTER_API_PEPPER`" in line)

    assert "| — |" in row
    assert "secrets provider" in row
