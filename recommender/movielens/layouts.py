"""The MovieLens folder layouts, their row formats, and the mapping of their demographics.

| layout    | ratings                         | movies                               | users                     |
|-----------|---------------------------------|--------------------------------------|---------------------------|
| ml-100k   | ``u.data`` (tab: user item rating ts) | ``u.item`` (``|``, latin-1, 19 genre flags) | ``u.user`` (``|``: id age gender occupation zip) |
| ml-1m     | ``ratings.dat`` (``::``)        | ``movies.dat`` (``::``, latin-1)     | ``users.dat`` (``::``: id gender age-code occupation-code zip) |
| ml-latest | ``ratings.csv`` (header, half stars) | ``movies.csv`` (header, utf-8)   | none                      |

ml-10m has the ml-1m files without ``users.dat`` and is read as ml-1m. ml-latest-small and ml-25m
are ml-latest.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from recommender.catalog.slugs import movie_slug, split_movielens_title


class LayoutError(ValueError):
    """The folder holds no MovieLens layout this importer knows."""


@dataclass(frozen=True)
class Layout:
    """Which files a MovieLens folder has, and how they are written."""

    name: str  # ml-100k | ml-1m | ml-latest
    folder: Path
    ratings: Path
    movies: Path | None
    users: Path | None
    encoding: str
    half_stars: bool

    @property
    def dataset(self) -> str:
        base = self.folder.name
        return base if base.startswith("ml-") else self.name


def detect_layout(folder: str | Path) -> Layout:
    """Recognise the layout by its file names; ``LayoutError`` names what was expected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LayoutError(f"{folder} is not a folder")

    def opt(name: str) -> Path | None:
        path = folder / name
        return path if path.exists() else None

    found = None
    if (folder / "u.data").exists():
        found = Layout("ml-100k", folder, folder / "u.data", opt("u.item"), opt("u.user"), "latin-1", False)
    elif (folder / "ratings.dat").exists():
        found = Layout("ml-1m", folder, folder / "ratings.dat", opt("movies.dat"), opt("users.dat"), "latin-1", False)
    elif (folder / "ratings.csv").exists():
        found = Layout("ml-latest", folder, folder / "ratings.csv", opt("movies.csv"), None, "utf-8", True)
    if found is not None:
        if found.movies is None:
            wanted = {"ml-100k": "u.item", "ml-1m": "movies.dat", "ml-latest": "movies.csv"}[found.name]
            raise LayoutError(f"{folder} looks like {found.name} but has no {wanted}: movie ids come from it")
        return found
    raise LayoutError(
        f"no MovieLens layout in {folder}: expected u.data (ml-100k), ratings.dat (ml-1m) or ratings.csv (ml-latest)"
    )


# --- demographics ------------------------------------------------------------------------------

# ml-1m occupation codes are the platform's occupation names.
ML1M_OCCUPATIONS = {
    0: "other or not specified", 1: "academic/educator", 2: "artist", 3: "clerical/admin",
    4: "college/grad student", 5: "customer service", 6: "doctor/health care", 7: "executive/managerial",
    8: "farmer", 9: "homemaker", 10: "K-12 student", 11: "lawyer", 12: "programmer", 13: "retired",
    14: "sales/marketing", 15: "scientist", 16: "self-employed", 17: "technician/engineer",
    18: "tradesman/craftsman", 19: "unemployed", 20: "writer",
}
# ml-1m records an age band by its lower bound; Usher stores an age inside the band (its middle),
# so age bands computed later land in the same band.
ML1M_AGES = {1: 16, 18: 21, 25: 30, 35: 40, 45: 47, 50: 52, 56: 60}
# ml-100k occupation names → the platform's names. "student" becomes "K-12 student" under 18.
ML100K_OCCUPATIONS = {
    "administrator": "clerical/admin", "artist": "artist", "doctor": "doctor/health care",
    "educator": "academic/educator", "engineer": "technician/engineer", "entertainment": "artist",
    "executive": "executive/managerial", "healthcare": "doctor/health care", "homemaker": "homemaker",
    "lawyer": "lawyer", "librarian": "academic/educator", "marketing": "sales/marketing",
    "none": "unemployed", "other": "other or not specified", "programmer": "programmer", "retired": "retired",
    "salesman": "sales/marketing", "scientist": "scientist", "student": "college/grad student",
    "technician": "technician/engineer", "writer": "writer",
}
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]
# MovieLens genre names → the platform's (TMDB) names; unlisted ones are kept as they are.
GENRE_NAMES = {"Children's": "Family", "Children": "Family", "Sci-Fi": "Science Fiction", "Musical": "Music"}
NO_GENRES = {"unknown", "(no genres listed)", ""}


class RowError(ValueError):
    """One row that cannot be read; ``code`` is a stable key for counts by reason."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass(frozen=True)
class MovieRow:
    ml_id: int
    raw_title: str
    title: str
    year: int | None
    genres: list[str]
    release_date: date | None

    @property
    def slug(self) -> str:
        return movie_slug(self.title, self.year)


@dataclass(frozen=True)
class UserRow:
    ml_id: int
    age: int | None
    gender: str
    occupation: str


def _genres(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        name = name.strip()
        if name in NO_GENRES:
            continue
        mapped = GENRE_NAMES.get(name, name)
        if mapped not in out:
            out.append(mapped)
    return out


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise RowError(f"{what} {text.strip()[:40]!r} is not a whole number", "movielens.bad_number")


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line:
                yield number, line


def read_movies(layout: Layout) -> Iterator[tuple[int, str, MovieRow | RowError]]:
    """``(line number, raw line, MovieRow or RowError)`` for each movie row."""
    if layout.movies is None:
        return
    if layout.name == "ml-latest":
        with layout.movies.open("r", encoding=layout.encoding, errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            for number, row in enumerate(reader, start=1):
                if number == 1 and row and row[0] == "movieId":
                    continue
                raw = ",".join(row)
                if len(row) != 3:
                    yield number, raw, RowError(f"expected 3 fields (movieId,title,genres), got {len(row)}",
                                                "movielens.bad_row")
                    continue
                try:
                    ml_id = _int(row[0], "movieId")
                except RowError as exc:
                    yield number, raw, exc
                    continue
                title, year = split_movielens_title(row[1])
                yield number, raw, MovieRow(ml_id, row[1], title, year, _genres(row[2].split("|")), None)
        return
    for number, line in _lines(layout.movies, layout.encoding):
        if layout.name == "ml-100k":
            parts = line.split("|")
            if len(parts) < 5:
                yield number, line, RowError(f"expected 24 '|' fields, got {len(parts)}", "movielens.bad_row")
                continue
            flags = parts[5:5 + len(ML100K_GENRES)]
            names = [g for g, flag in zip(ML100K_GENRES, flags, strict=False) if flag.strip() == "1"]
            released = None
            if parts[2].strip():
                try:
                    released = datetime.strptime(parts[2].strip(), "%d-%b-%Y").date()
                except ValueError:
                    released = None
            raw_title = parts[1]
        else:
            parts = line.split("::")
            if len(parts) != 3:
                yield number, line, RowError(f"expected 3 '::' fields, got {len(parts)}", "movielens.bad_row")
                continue
            names, released, raw_title = parts[2].split("|"), None, parts[1]
        try:
            ml_id = _int(parts[0], "movie id")
        except RowError as exc:
            yield number, line, exc
            continue
        title, year = split_movielens_title(raw_title)
        if year is None and released is not None:
            year = released.year
        yield number, line, MovieRow(ml_id, raw_title, title, year, _genres(names), released)


def read_users(layout: Layout) -> Iterator[tuple[int, str, UserRow | RowError]]:
    """``(line number, raw line, UserRow or RowError)``; demographics mapped to the platform's names."""
    if layout.users is None:
        return
    for number, line in _lines(layout.users, layout.encoding):
        try:
            if layout.name == "ml-100k":
                parts = line.split("|")
                if len(parts) != 5:
                    raise RowError(f"expected 5 '|' fields, got {len(parts)}", "movielens.bad_row")
                ml_id, age = _int(parts[0], "user id"), _int(parts[1], "age")
                occupation = ML100K_OCCUPATIONS.get(parts[3].strip(), "other or not specified")
                if occupation == "college/grad student" and age < 18:
                    occupation = "K-12 student"
                gender = parts[2].strip().upper()
            else:
                parts = line.split("::")
                if len(parts) != 5:
                    raise RowError(f"expected 5 '::' fields, got {len(parts)}", "movielens.bad_row")
                ml_id, gender = _int(parts[0], "user id"), parts[1].strip().upper()
                age_code, occ_code = _int(parts[2], "age code"), _int(parts[3], "occupation code")
                if age_code not in ML1M_AGES:
                    raise RowError(f"age code {age_code} is not one of {sorted(ML1M_AGES)}", "movielens.bad_value")
                if occ_code not in ML1M_OCCUPATIONS:
                    raise RowError(f"occupation code {occ_code} outside 0–20", "movielens.bad_value")
                age, occupation = ML1M_AGES[age_code], ML1M_OCCUPATIONS[occ_code]
            if gender not in ("M", "F"):
                raise RowError(f"gender {gender[:10]!r} is not M or F", "movielens.bad_value")
            if not 1 <= age <= 110:
                raise RowError(f"age {age} outside 1–110", "movielens.out_of_range")
        except RowError as exc:
            yield number, line, exc
            continue
        yield number, line, UserRow(ml_id, age, gender, occupation)


def stars(value: float) -> int:
    """MovieLens half stars → the platform's 1–5: round half up, so 0.5→1, 2.5→3, 4.5→5."""
    return min(5, max(1, math.floor(value + 0.5)))


def read_ratings(layout: Layout) -> Iterator[tuple[int, str, tuple[int, int, float, int] | RowError]]:
    """``(line number, raw line, (user, movie, rating, unix time) or RowError)``, streamed."""
    sep = {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}[layout.name]
    low = 0.5 if layout.half_stars else 1.0
    for number, line in _lines(layout.ratings, layout.encoding):
        if number == 1 and layout.name == "ml-latest" and line.startswith("userId"):
            continue
        parts = line.split(sep)
        if len(parts) != 4:
            yield number, line, RowError(f"expected 4 fields, got {len(parts)}", "movielens.bad_row")
            continue
        try:
            user, movie = int(parts[0]), int(parts[1])
            rating, ts = float(parts[2]), int(parts[3])
        except ValueError:
            yield number, line, RowError("user, movie, rating or timestamp is not a number", "movielens.bad_number")
            continue
        if not low <= rating <= 5.0 or (rating * 2) % 1 or (not layout.half_stars and rating % 1):
            yield number, line, RowError(f"rating {parts[2].strip()} outside {low:g}–5", "movielens.bad_rating")
            continue
        if user <= 0 or ts <= 0:
            yield number, line, RowError("user id and timestamp must be positive", "movielens.bad_value")
            continue
        yield number, line, (user, movie, rating, ts)
