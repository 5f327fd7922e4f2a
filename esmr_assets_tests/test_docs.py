"""The README and the book: every link stays inside the repository and lands on a file (and a
heading, for an anchor), and every block a renderer writes has exactly one page to go to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "studies" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
RENDERED = ["results", "fairness", "effects", "fair-test", "study-timings",
            *(f"study:{spec.stem}" for spec in sorted((REPO / "studies").glob("*.toml"))
              if (REPO / "studies" / "results" / spec.stem / "report.parquet").is_file())]


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors, code = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        elif not code and (match := re.match(r"^#+\s+(.*)$", line)):
            anchors.add(_slug(match.group(1)))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_link_stays_in_the_repository_and_lands(page):
    broken = []
    for link in LINK.findall(page.read_text()):
        target, _, anchor = link.partition("#")
        if re.match(r"^[a-z]+:", target):
            broken.append(f"{link}: leaves the repository")
            continue
        path = (page.parent / target).resolve() if target else page
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(f"{link}: no such file in the repository")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link}: no heading with that anchor")
    assert not broken, broken


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for page in ("design", "results", "studies", "igl", "paper", "performance", "operations"):
        assert f"(docs/{page}.md)" in text, f"the README does not lead to docs/{page}.md"


@pytest.mark.parametrize("block", RENDERED)
def test_every_rendered_block_has_exactly_one_page(block):
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    holders = [page.name for page in PAGES if start in (text := page.read_text()) and end in text]
    assert len(holders) == 1, f"{block} is in {holders or 'no page'}"
