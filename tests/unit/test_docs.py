"""The README stays short and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_the_readme_fits_on_two_screens():
    assert len((ROOT / "README.md").read_text()) <= 8000


def test_the_docs_an_operator_needs_are_there():
    for name in ("architecture", "operations", "decisions", "benchmarks"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"docs/{name}.md" in (ROOT / "README.md").read_text(), name


def test_every_relative_link_resolves():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _ in LINK.findall(page.read_text()):
            outside = not (page.parent / target).resolve().is_relative_to(ROOT)  # the shared SPEC.md
            if target.startswith(("http://", "https://", "mailto:")) or outside:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
