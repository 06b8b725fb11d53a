"""Build the MovieLens 100k folder (u.data, u.item, u.user) from a copy that ships on PyPI.

There is no internet at run time except the package registries, and no ml-100k on the machine.
RecBole's wheel (``recbole==1.2.1`` on PyPI) bundles the complete ml-100k in its atomic-file
format (``recbole/dataset_example/ml-100k/ml-100k.{inter,user,item}``): 100,000 ratings of 943
users on 1,682 movies, rows in u.data's own order. This script downloads that wheel with pip
(``--no-deps``; nothing is installed), and writes the three files in MovieLens's own layout:

    python benchmarks/fetch_ml100k.py [OUT_DIR]      # default: var/datasets/ml-100k

u.item's release dates are rebuilt as 01-Jan-<year> (RecBole keeps the year only) and its IMDb
URL column is left empty; genres are the original 19 flags. Ratings and users are exact.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "recbole==1.2.1"
PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _rows(data: bytes) -> list[list[str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t")
    next(reader)  # header: name:type columns
    return [row for row in reader if row]


def build(out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--quiet", "-d", tmp],
                       check=True)
        wheel = next(Path(tmp).glob("recbole-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            inter = _rows(archive.read(f"{PREFIX}.inter"))
            users = _rows(archive.read(f"{PREFIX}.user"))
            items = _rows(archive.read(f"{PREFIX}.item"))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "u.data", "w", encoding="latin-1", newline="") as handle:
        for user, item, rating, ts in inter:
            handle.write(f"{user}\t{item}\t{int(float(rating))}\t{int(float(ts))}\n")
    with open(out / "u.user", "w", encoding="latin-1", newline="") as handle:
        for user, age, gender, occupation, zip_code in users:
            handle.write(f"{user}|{age}|{gender}|{occupation}|{zip_code}\n")
    with open(out / "u.item", "w", encoding="latin-1", errors="replace", newline="") as handle:
        for row in sorted(items, key=lambda r: int(r[0])):
            item, title, year, classes = (row + ["", "", ""])[:4]
            names = set(classes.split()) if classes else set()
            # RecBole splits genres on spaces: "Children's" and "Film-Noir" survive, "Sci-Fi" too.
            flags = "|".join("1" if g in names else "0" for g in GENRES)
            released = f"01-Jan-{year}" if year.isdigit() else ""
            label = f"{title} ({year})" if year.isdigit() else title
            handle.write(f"{item}|{label}|{released}||{flags}\n")
    digest = hashlib.sha256((out / "u.data").read_bytes()).hexdigest()
    return {"ratings": len(inter), "users": len(users), "movies": len(items), "u.data sha256": digest}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "var/datasets/ml-100k"
    print(target, build(target))
