"""Write a benchmark's figures into its own section of docs/benchmarks.md (``--write``)."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def docs_section_write(heading: str, body: str, *, path: Path = BENCHMARKS_MD) -> Path:
    """Replace the section under ``heading`` (a ``## `` line) with ``body``, or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = heading + "\n\n" + body.strip() + "\n"
    if heading in text:
        before, rest = text.split(heading, 1)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
    print(f"wrote {path}")
    return path
