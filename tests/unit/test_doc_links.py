"""Every relative link in README.md and docs/*.md points to a file of the repository.

A link is Markdown's ``[text](target)`` or ``![alt](target)``; a target with a scheme
(``https:``, ``mailto:``) or only an anchor (``#part``) is not a file and is left alone; an
anchor after a path is cut off. Code spans and fenced blocks are skipped: what they hold is code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*(?:<([^>\n]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def links(text: str) -> list[str]:
    """The link targets of a Markdown text, outside code."""
    text = _CODE.sub("", _FENCE.sub("", text))
    return [angled or bare for angled, bare in _LINK.findall(text)]


def relative_files(targets: list[str]) -> list[str]:
    """The targets that name a file (no scheme, not only an anchor), without their anchor."""
    out = []
    for t in targets:
        if _SCHEME.match(t) or t.startswith("#"):
            continue
        out.append(t.split("#", 1)[0])
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see [docs](docs/a.md) and ![pic](docs/a.png)", ["docs/a.md", "docs/a.png"]),
        ("[a](https://example.org/x.md) [b](#top) [c](c.md#part)", ["c.md"]),
        ('[t](<x y.md>) [u](u.md "title")', ["x y.md", "u.md"]),
        ("`[not](a link)`\n```\n[no](pe.md)\n```\n[yes](y.md)", ["y.md"]),
    ],
)
def test_the_link_reader(text: str, expected: list[str]) -> None:
    assert relative_files(links(text)) == expected


def test_the_pages_exist_and_link_somewhere() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) > 5
    assert len(relative_files(links((ROOT / "README.md").read_text()))) >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file(page: Path) -> None:
    missing = [t for t in relative_files(links(page.read_text())) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files: {missing}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t).resolve() for t in relative_files(links((ROOT / "README.md").read_text()))}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
