"""The README stays short and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]*)(#[^)]*)?\)")


def test_the_readme_fits_on_two_screens():
    assert len((ROOT / "README.md").read_text()) <= 8000


def test_the_docs_an_operator_needs_are_there():
    for name in ("architecture", "operations", "decisions", "benchmarks"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"docs/{name}.md" in (ROOT / "README.md").read_text(), name


def test_every_link_resolves_to_a_file_in_the_repository():
    """Nothing links outside the repository (no web address, no path above it)."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _ in LINK.findall(page.read_text()):
            resolved = (page.parent / target).resolve() if target else page
            if "://" in target or target.startswith("mailto:") or not resolved.is_relative_to(ROOT) or not resolved.is_file():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_every_anchor_names_a_heading_of_its_page():
    def anchors(page: Path) -> set[str]:
        headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}

    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in LINK.findall(page.read_text()):
            linked = page.parent / target if target else page
            if anchor and linked.is_file() and anchor[1:] not in anchors(linked):
                missing.append(f"{page.relative_to(ROOT)} -> {target}{anchor}")
    assert missing == []


def test_the_link_checks_catch_what_they_must(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("[spec](../shared/SPEC.md) [web](https://example.org/x) [ok](docs/a.md#b)")
    (tmp_path / "docs" / "a.md").write_text("# A\n## C\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    for check, expected in ((test_every_link_resolves_to_a_file_in_the_repository, "README.md -> ../shared/SPEC.md"),
                            (test_every_anchor_names_a_heading_of_its_page, "README.md -> docs/a.md#b")):
        try:
            check()
        except AssertionError as failure:
            assert expected in str(failure)
        else:
            raise AssertionError(f"{check.__name__} let a bad link through")
