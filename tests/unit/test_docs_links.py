"""Every relative link of the documentation leads somewhere: README.md, docs/*.md and the roles' READMEs.

A link to a file must name one that exists (relative to the page); a link with `#anchor` must name a
heading of the page it points to, by GitHub's rules for heading anchors. Links with a scheme (https:,
mailto:) are not checked. Inline code and fenced code blocks are skipped.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("roles/*/README.md")])

FENCE_RE = re.compile(r"^(```|~~~)")
INLINE_CODE_RE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); reference definitions: [label]: target
LINK_RE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR_RE = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    lines, fenced = [], None
    for line in text.splitlines():
        mark = FENCE_RE.match(line.lstrip())
        if mark:
            if fenced is None:
                fenced = mark.group(1)
            elif mark.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            lines.append(INLINE_CODE_RE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lowercased, punctuation dropped,
    spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.replace("`", "").lower()
    kept = []
    for char in text:
        if char in (" ", "-", "_") or unicodedata.category(char)[0] in ("L", "N", "M"):
            kept.append("-" if char == " " else char)
    return "".join(kept)


def anchors(page: Path) -> set[str]:
    """Every anchor of a page: its headings' slugs (repeats get -1, -2, ... as on GitHub) and HTML
    anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = page.read_text(encoding="utf-8")
    for line in prose_lines(text):
        match = HEADING_RE.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR_RE.findall(text))
    return found


def links(page: Path) -> list[str]:
    targets = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        targets += LINK_RE.findall(line)
        reference = REFERENCE_RE.match(line)
        if reference:
            targets.append(reference.group(1))
    return targets


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("//")


def shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in links(page):
        if not is_relative(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not destination.exists():
            problems.append(f"{target}: {shown(destination, root)} does not exist")
            continue
        if anchor:
            if destination.is_dir() or destination.suffix.lower() != ".md":
                problems.append(f"{target}: an anchor into a file that is not a Markdown page")
            elif unquote(anchor) not in anchors(destination):
                problems.append(f"{target}: no heading of {shown(destination, root)} has the anchor #{anchor}")
    return problems


def test_the_pages_are_there():
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert "README.md" in names
    assert any(name.startswith("docs/") for name in names), "no page under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    assert broken_links(page) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Chaos and the faults", "chaos-and-the-faults"),
        ("Why our own modules, not the alibaba.alicloud collection",
         "why-our-own-modules-not-the-alibabaalicloud-collection"),
        ("`status.yml`: where training stands", "statusyml-where-training-stands"),
        ("One trainer at a time & the lease", "one-trainer-at-a-time--the-lease"),
        ("Role tests with [molecule](https://molecule.rtfd.io)", "role-tests-with-molecule"),
        ("Step_by_step: 1-2", "step_by_step-1-2"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str):
    assert slug(heading) == anchor


def test_a_broken_link_is_found(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Title\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md) [ok](other.md#a-section) [ok](#here) [web](https://example.com/x)\n"
        "`[in code](missing.md)`\n\n```\n[in a block](missing.md)\n```\n\n"
        "## Here\n[gone](missing.md) [no anchor](other.md#nowhere)\n",
        encoding="utf-8",
    )
    problems = broken_links(page, tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("missing.md:")
    assert "#nowhere" in problems[1]
