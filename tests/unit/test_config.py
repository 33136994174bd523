"""Configuration: defaults, validation, and the README's table kept in sync with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpbank.config import DEFAULTS, PAGES, ConfigError, Settings, markdown_table, page_of

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_on_a_developer_machine():
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.partitions, settings.rules.generation, settings.rules.lateness_seconds) == (8, 1, 3600)


@pytest.mark.parametrize(("name", "value"), [("XPBANK_PARTITIONS", "0"), ("XPBANK_GENERATION", "two"), ("XPBANK_STORE", "redis://")])
def test_bad_values_fail_with_the_variables_name(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("page", ["README.md", *PAGES])
def test_every_variable_is_listed_with_its_default_on_its_page(page):
    text = (ROOT / page).read_text()
    assert markdown_table(page) in text, f"{page}: paste config.markdown_table({page!r})"
    for name, default in DEFAULTS.items():
        if page_of(name) == page:
            assert f"| `{name}` | `{default or '(empty)'}` |" in text, name
    if page != "README.md":
        assert page in (ROOT / "README.md").read_text(), "the README links every page of settings"
