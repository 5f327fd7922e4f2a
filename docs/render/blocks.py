"""Where rendered blocks go: every generated table lives between `<!-- name:start -->` and
`<!-- name:end -->` in exactly one page of docs/, and the renderers find that page by its
markers, so a block can move between pages without touching a renderer."""

from __future__ import annotations

import os
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def page_with(name: str, docs: Path = DOCS) -> Path | None:
    """The one page under `docs` holding the block `name`, or None; two pages holding it is an error."""
    start, end = markers(name)
    pages = [page for page in sorted(docs.glob("*.md")) if start in (text := page.read_text()) and end in text]
    if len(pages) > 1:
        raise SystemExit(f"the block {name!r} is in {len(pages)} pages: {', '.join(p.name for p in pages)}")
    return pages[0] if pages else None


def link(target: Path, page: Path) -> str:
    """`target` as a link from `page` (relative, with forward slashes)."""
    return Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()


def write_block(name: str, parts, docs: Path = DOCS, required: bool = True) -> Path | None:
    """Replace the block `name` with `parts` (strings, or a function of the page returning
    them, for links relative to it); returns the page written, or None when no page holds it
    and it is not `required`."""
    page = page_with(name, docs)
    if page is None:
        if required:
            raise SystemExit(f"no page under {docs} has the {' ... '.join(markers(name))} markers")
        return None
    start, end = markers(name)
    body = parts(page) if callable(parts) else parts
    block = "\n\n".join([start, *body, end])
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, page.read_text(), flags=re.S)
    page.write_text(text)
    return page
