"""The documentation leads somewhere, and the README stays short.

Every relative link and image in README.md, BENCHMARKS.md, RELIABILITY.md and docs/**/*.md must reach a
file or folder of the repository (and its ``#anchor`` a heading there), and so must every backticked
repository path (`learndrop/method/policy.py`, `benchmarks/results/scratch-20261122-051925.{md,json}`,
`docs/screenshots/`). A code span counts as a repository path when its first part is one of the
repository's own top-level entries and it ends in a file name with an extension, a glob or a '/'; paths under a folder that .gitignore keeps out (`benchmarks/runs/`) are outputs a
fresh clone does not have, so they are not followed, and a link into one is an error.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "RELIABILITY.md",
               *(ROOT / "docs").rglob("*.md")])
README_MAX_LINES = 160
SNIPPET = "LearnDrop(model, optimizer"  # the loop snippet's first line
SNIPPET_WITHIN = 60

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^\s*(```|~~~)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:


def _ignored_patterns() -> list[str]:
    path = ROOT / ".gitignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


IGNORED = _ignored_patterns()


def is_ignored(rel: str) -> bool:
    """Whether .gitignore keeps ``rel`` (a path relative to the root, '/'-separated) out of the repository."""
    parts = [p for p in rel.split("/") if p]
    for pattern in IGNORED:
        anchored, name = pattern.startswith("/"), pattern.strip("/")
        if anchored:
            if rel.strip("/") == name or rel.strip("/").startswith(name + "/"):
                return True
        elif any(fnmatch.fnmatch(part, name) for part in parts):
            return True
    return False


TOP = {p.name for p in ROOT.iterdir() if p.name != ".git" and not is_ignored(p.name + ("/" if p.is_dir() else ""))}


def prose_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file: lower case, punctuation dropped, spaces as '-',
    a repeated heading numbered (-1, -2)."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def expand(path: str) -> list[str]:
    """``a.{md,json}`` -> ``a.md``, ``a.json`` (one level of braces, as the docs write result files)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", path)
    if not match:
        return [path]
    return [x for option in match.group(1).split(",")
            for x in expand(path[:match.start()] + option + path[match.end():])]


def exists(rel: str) -> bool:
    """Whether the repository path ``rel`` (relative to the root; a glob matches something) is there."""
    if any(c in rel for c in "*?["):
        return bool(glob.glob(str(ROOT / rel)))
    return (ROOT / rel).exists()


def repository_path(span: str) -> str | None:
    """The repository path a code span names, or None when it names none (a command, a module, a name)."""
    text = span.strip().split("::")[0]  # tests/test_x.py::test_name -> the file
    plain = re.sub(r"\{[^{}]*\}", "", text)  # a brace group's commas are the path's alternatives
    if not text or any(c.isspace() for c in text) or any(c in plain for c in "<>$\"'=(),;|"):
        return None  # a command, a placeholder (runs/<run_id>/), a value
    first, last = text.split("/")[0], text.rstrip("/").split("/")[-1]
    if first not in TOP:
        return None
    if not (text.endswith("/") or "." in last or any(c in text for c in "*?[")):
        return None  # no file name (learndrop/dropped: a logged metric's name)
    return text


def broken_targets(doc: Path) -> list[str]:
    """What ``doc`` points at that is not there, one line each: line number, the target, why."""
    text = doc.read_text(encoding="utf-8")
    rel_doc = doc.relative_to(ROOT).as_posix()
    out = []
    for number, line in prose_lines(text):
        for target in LINK.findall(line):
            if EXTERNAL.match(target) or target.startswith("//"):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (doc.parent / file_part).resolve() if file_part else doc
            try:
                rel = resolved.relative_to(ROOT).as_posix()
            except ValueError:
                out.append(f"{rel_doc}:{number}: link {target!r} leaves the repository")
                continue
            if not resolved.exists():
                out.append(f"{rel_doc}:{number}: link {target!r}: no {rel}")
            elif is_ignored(rel + ("/" if resolved.is_dir() else "")):
                out.append(f"{rel_doc}:{number}: link {target!r}: {rel} is ignored by git (a fresh clone lacks it)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                out.append(f"{rel_doc}:{number}: link {target!r}: no heading #{anchor} in {rel}")
        for span in CODE_SPAN.findall(line):
            path = repository_path(span)
            if path is None or is_ignored(path):
                continue
            missing = [p for p in expand(path) if not exists(p)]
            if missing:
                out.append(f"{rel_doc}:{number}: path `{span}`: no {', '.join(missing)}")
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_and_repository_path_in_the_docs_leads_somewhere(doc):
    assert doc.exists(), f"{doc.relative_to(ROOT)} is gone"
    broken = broken_targets(doc)
    assert not broken, "broken links or paths:\n" + "\n".join(broken)


def test_every_page_under_docs_is_reachable_from_the_readme():
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        doc = todo.pop()
        if doc in seen or not doc.exists() or doc.suffix != ".md":
            continue
        seen.add(doc)
        for _, line in prose_lines(doc.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                file_part = target.partition("#")[0]
                if file_part and not EXTERNAL.match(target):
                    todo.append((doc.parent / file_part).resolve())
    orphans = [p.relative_to(ROOT).as_posix() for p in DOCS if p not in seen]
    assert not orphans, f"no chain of links from README.md reaches: {', '.join(orphans)}"


def test_the_readme_is_short_and_shows_the_loop_early():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"
    at = next((n for n, line in enumerate(lines, 1) if SNIPPET in line), None)
    assert at is not None, f"README.md has no line with {SNIPPET!r}"
    assert at <= SNIPPET_WITHIN, f"README.md's loop snippet ({SNIPPET!r}) is at line {at}, not in the first {SNIPPET_WITHIN}"


def test_the_checker_finds_what_is_broken(tmp_path, monkeypatch):
    """The checker itself: a missing file, a missing anchor, a missing backticked path, an ignored target."""
    doc = ROOT / "docs" / "__checker_probe__.md"  # never written: read through a patched read_text
    text = ("[ok](../README.md) [gone](nowhere.md) [anchor](../README.md#no-such-heading)\n"
            "`learndrop/no_such_module.py` `learndrop/config.py` `benchmarks/runs/x.json` `python -m learndrop`\n"
            "`benchmarks/results/scratch-20261122-051925.{md,json}` `benchmarks/results/none-*.md`\n"
            "`benchmarks/results/stream-20261122-053055.{md,png}` `learndrop/dropped`\n"
            "```\n[in a fence](missing.md)\n```\n")
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == doc else original(self, *a, **k))
    found = "\n".join(broken_targets(doc))
    assert "nowhere.md" in found and "#no-such-heading" in found
    assert "learndrop/no_such_module.py" in found and "none-*.md" in found
    assert "stream-20261122-053055.png" in found and "stream-20261122-053055.md" not in found
    assert "learndrop/dropped" not in found
    assert "config.py" not in found and "benchmarks/runs" not in found and "scratch-20261122" not in found
    assert "in a fence" not in found and "missing.md" not in found
