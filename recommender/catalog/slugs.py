"""Platform-style movie ids from a title and a year.

The rule (matches the platform's ids in DESIGN.md):
- the title and the year are joined with one space (no year: the id ends in ``+``) and lower-cased;
- ASCII letters, digits, ``.`` and ``-`` are kept;
- each whitespace character becomes ``+``;
- ``&``, ``'`` and every non-ASCII character are dropped (``Pölynimurikauppiaat`` → ``plynimurikauppiaat+``,
  ``Rosencrantz & Guildenstern Are Dead`` (1991) → ``rosencrantz++guildenstern+are+dead+1991``);
- every other character (``,`` ``:`` ``!`` ``?`` ``(`` ``)`` ``/`` …) becomes ``_``
  (``Monsters, Inc.`` (2001) → ``monsters_+inc.+2001``).

MovieLens writes titles as ``Shawshank Redemption, The (1994)``; ``split_movielens_title`` moves the
trailing article back to the front and strips alternate titles in parentheses first.
"""

from __future__ import annotations

import re
import string

_KEEP = set(string.ascii_lowercase + string.digits + ".-")
_DROP = set("&'")
_ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "Lo", "Gli", "Das", "Der", "Die", "Den", "Det",
             "El", "Los", "Las", "Un", "Une", "Una", "Ein", "Eine")
_YEAR_RE = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
_ARTICLE_RE = re.compile(r"^(?P<rest>.+?),\s*(?P<article>" + "|".join(re.escape(a) for a in _ARTICLES) + r")$")


def movie_slug(title: str, year: int | None) -> str:
    """The platform's id for a movie: ``movie_slug("Monsters, Inc.", 2001) == "monsters_+inc.+2001"``."""
    text = f"{title.strip()} {year if year else ''}".lower()
    out: list[str] = []
    for ch in text:
        if ch in _KEEP:
            out.append(ch)
        elif ch.isspace():
            out.append("+")
        elif ch in _DROP or not ch.isascii():
            continue
        else:
            out.append("_")
    return "".join(out)[:255]


def split_movielens_title(raw: str) -> tuple[str, int | None]:
    """``"Shawshank Redemption, The (1994)"`` → ``("The Shawshank Redemption", 1994)``.

    Alternate titles in parentheses (``Seven (a.k.a. Se7en) (1995)``, ``City of Lost Children, The
    (Cité des enfants perdus, La) (1995)``) are dropped; a trailing article is moved to the front.
    """
    title, year = raw.strip(), None
    match = _YEAR_RE.match(title)
    if match:
        title, year = match.group("title").strip(), int(match.group("year"))
    while title.endswith(")") and " (" in title:
        head = title[: title.rindex(" (")].strip()
        if not head:
            break
        title = head
    match = _ARTICLE_RE.match(title)
    if match:
        article = match.group("article")
        title = f"{article}{match.group('rest')}" if article.endswith("'") else f"{article} {match.group('rest')}"
    return title, year
