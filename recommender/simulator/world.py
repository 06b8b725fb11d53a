"""The simulated world: viewers, movies and the latent tastes that drive what viewers watch and rate.

Tastes are a low-rank model, so matrix factorisation can learn them:
``score(u, i) = mu + b_u + b_i + U_u · V_i``. Movie factors come from their genres (each genre has a
direction in taste space) plus noise; viewer factors from their demographic group (age band and
gender) plus an individual part. A rating is ``round(score + noise)`` clipped to 1–5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from recommender.catalog.schema import OCCUPATIONS
from recommender.catalog.slugs import movie_slug

GENRES = ["Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family", "Fantasy",
          "History", "Horror", "Music", "Mystery", "Romance", "Science Fiction", "Thriller", "War", "Western"]
GENRE_WEIGHTS = [9, 6, 3, 12, 6, 3, 16, 4, 4, 2, 5, 2, 3, 8, 4, 8, 2, 1]
# The platform's audience mix (MovieLens 1M shares, which the platform's data resembles).
AGE_BANDS = [((13, 17), 0.04), ((18, 24), 0.18), ((25, 34), 0.35), ((35, 44), 0.20), ((45, 49), 0.09),
             ((50, 55), 0.08), ((56, 80), 0.06)]
GENDER_F_SHARE = 0.29
OCCUPATION_WEIGHTS = {
    "other or not specified": 711, "academic/educator": 528, "artist": 267, "clerical/admin": 173,
    "college/grad student": 759, "customer service": 112, "doctor/health care": 236, "executive/managerial": 679,
    "farmer": 17, "homemaker": 92, "K-12 student": 195, "lawyer": 129, "programmer": 388, "retired": 142,
    "sales/marketing": 302, "scientist": 144, "self-employed": 241, "technician/engineer": 502,
    "tradesman/craftsman": 70, "unemployed": 72, "writer": 281,
}
_ADJECTIVES = ["Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Distant", "Frozen", "Wild", "Midnight",
               "Lost", "Burning", "Secret", "Empty", "Electric", "Quiet", "Savage", "Little", "Endless", "Dark",
               "Bright", "Restless", "Paper", "Iron", "Velvet", "Hollow", "Northern", "Lonely", "Final", "Sweet"]
_NOUNS = ["River", "Harbor", "Kingdom", "Garden", "Horizon", "Signal", "Mirror", "Empire", "Promise", "Shadow",
          "Station", "Orchard", "Frontier", "Machine", "Summer", "Winter", "Letter", "Island", "Voyage", "Circus",
          "Detective", "Heart", "Storm", "Highway", "Planet", "Symphony", "Alibi", "Carnival", "Outpost", "Witness"]
_FORMS = ["The {a} {n}", "{a} {n}", "{n} of the {a}", "The {n}", "A {a} {n}", "{a} {n}: Part {k}", "{n}, {n2} & Me",
          "Return to {n}", "The {n}'s {n2}", "{a} {n} {k}"]


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and shape of the world; the same config and seed always build the same world."""

    seed: int = 42
    viewers: int = 500
    movies: int = 300
    factors: int = 8
    viewer_id_start: int = 100_001
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    visits_per_viewer_per_day: float = 1.0
    rating_noise: float = 0.5
    mean_rating: float = 2.3  # mu: the global mean of the true scores (observed ratings run higher: viewers pick what they like)
    taste_scale: float = 1.5  # variance of U·V relative to the biases: larger = more personal taste
    # Share of a viewer's taste vector that is their demographic group's (age band × gender); the rest is
    # their own. 0: every viewer's taste from one distribution (groups differ only by what a scenario plants).
    # Demographics explain little of real viewers' ratings; at 0.36 (the former default) a model trained on a
    # week serves some groups significantly worse with no bias planted, so every fairness audit of the demo
    # failed (benchmarks/calibration.py).
    group_taste_share: float = 0.1


@dataclass
class World:
    """Viewers and movies with their latent tastes (numpy arrays indexed by position)."""

    config: WorldConfig
    viewer_ids: np.ndarray = field(repr=False)
    ages: np.ndarray = field(repr=False)
    genders: np.ndarray = field(repr=False)
    occupations: np.ndarray = field(repr=False)
    activity: np.ndarray = field(repr=False)
    movie_ids: list[str] = field(repr=False)
    titles: list[str] = field(repr=False)
    years: np.ndarray = field(repr=False)
    movie_genres: list[list[str]] = field(repr=False)
    runtimes: np.ndarray = field(repr=False)
    popularity: np.ndarray = field(repr=False)
    U: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    b_u: np.ndarray = field(repr=False)
    b_i: np.ndarray = field(repr=False)
    genre_vectors: np.ndarray = field(repr=False)
    mu: float = 3.5

    # --- building -----------------------------------------------------------------------------
    @classmethod
    def build(cls, config: WorldConfig | None = None, **overrides) -> World:
        """A world from a config (or keyword overrides of the defaults), deterministic in ``seed``."""
        if config is None:
            config = WorldConfig(**overrides)
        rng = np.random.default_rng(config.seed)
        n_v, n_m, k = config.viewers, config.movies, config.factors

        band_idx = rng.choice(len(AGE_BANDS), size=n_v, p=[w for _, w in AGE_BANDS])
        ages = np.array([rng.integers(AGE_BANDS[b][0][0], AGE_BANDS[b][0][1] + 1) for b in band_idx])
        genders = np.where(rng.random(n_v) < GENDER_F_SHARE, "F", "M")
        occ_names = list(OCCUPATION_WEIGHTS)
        occ_p = np.array(list(OCCUPATION_WEIGHTS.values()), dtype=float)
        occupations = rng.choice(occ_names, size=n_v, p=occ_p / occ_p.sum()).astype(object)
        young = ages < 18
        occupations[young] = "K-12 student"
        occupations[(ages >= 18) & (occupations == "K-12 student")] = "college/grad student"
        occupations[(ages < 50) & (occupations == "retired")] = "other or not specified"
        activity = rng.lognormal(mean=0.0, sigma=0.8, size=n_v)
        activity = activity / activity.mean()

        # Taste: genre directions; movies near their genres; viewers near their group's taste.
        per_factor = (config.taste_scale / k) ** 0.5  # so Var(U·V) ≈ taste_scale
        scale = per_factor**0.5
        genre_vectors = rng.normal(0, 1, size=(len(GENRES), k))
        genre_p = np.array(GENRE_WEIGHTS, dtype=float) / sum(GENRE_WEIGHTS)
        movie_genres: list[list[str]] = []
        V = np.zeros((n_m, k))
        for i in range(n_m):
            count = rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15])
            picks = rng.choice(len(GENRES), size=count, replace=False, p=genre_p)
            movie_genres.append([GENRES[g] for g in sorted(picks)])
            V[i] = genre_vectors[picks].mean(axis=0) * 0.8 + rng.normal(0, 0.6, size=k)
        V = V / V.std() * scale
        group_taste = {key: rng.normal(0, 1, size=k) for key in
                       [(b, g) for b in range(len(AGE_BANDS)) for g in ("M", "F")]}
        if not 0.0 <= config.group_taste_share <= 1.0:
            raise ValueError(f"group_taste_share must be within 0–1, not {config.group_taste_share}")
        group_weight, own_weight = config.group_taste_share**0.5, (1.0 - config.group_taste_share) ** 0.5
        U = (np.array([group_taste[(band_idx[u], genders[u])] * group_weight for u in range(n_v)])
             + rng.normal(0, own_weight, (n_v, k)))
        U = U / U.std() * scale

        # Popularity: a long tail (Pareto), recent movies a little more popular.
        years = np.clip(np.round(2024 - rng.gamma(2.0, 9.0, size=n_m)), 1930, 2024).astype(int)
        popularity = rng.pareto(1.2, size=n_m) + 0.05
        popularity = popularity * (1 + 0.3 * (years > 2010))
        b_i = rng.normal(0, 0.35, size=n_m) + 0.15 * (np.log(popularity) - np.log(popularity).mean())
        b_u = rng.normal(0, 0.3, size=n_v)
        runtimes = np.clip(rng.normal(105, 20, size=n_m), 70, 200).astype(int)

        titles, slugs, taken = [], [], set()
        for i in range(n_m):
            for attempt in range(50):
                form = _FORMS[rng.integers(len(_FORMS))]
                title = form.format(a=_ADJECTIVES[rng.integers(len(_ADJECTIVES))], n=_NOUNS[rng.integers(len(_NOUNS))],
                                    n2=_NOUNS[rng.integers(len(_NOUNS))], k=int(rng.integers(2, 5)))
                if attempt > 10:
                    title = f"{title} {attempt}"
                slug = movie_slug(title, int(years[i]))
                if slug not in taken:
                    break
            taken.add(slug)
            titles.append(title)
            slugs.append(slug)

        viewer_ids = np.arange(config.viewer_id_start, config.viewer_id_start + n_v, dtype=np.int64)
        return cls(config=config, viewer_ids=viewer_ids, ages=ages, genders=genders, occupations=occupations,
                   activity=activity, movie_ids=slugs, titles=titles, years=years, movie_genres=movie_genres,
                   runtimes=runtimes, popularity=popularity, U=U, V=V, b_u=b_u, b_i=b_i,
                   genre_vectors=genre_vectors / np.linalg.norm(genre_vectors, axis=1, keepdims=True) * scale,
                   mu=config.mean_rating)

    # --- tastes ---------------------------------------------------------------------------------
    def scores(self, viewer: int) -> np.ndarray:
        """The true (noise-free) rating of every movie for the viewer at position ``viewer``."""
        return self.mu + self.b_u[viewer] + self.b_i + self.V @ self.U[viewer]

    def rating(self, viewer: int, movie: int, rng: np.random.Generator, shift: float = 0.0) -> int:
        """One rating 1–5: the true score plus noise (and a scenario's shift), rounded and clipped."""
        value = self.mu + self.b_u[viewer] + self.b_i[movie] + float(self.V[movie] @ self.U[viewer])
        value += rng.normal(0, self.config.rating_noise) + shift
        return int(min(5, max(1, round(value))))

    # --- groups and lookups ---------------------------------------------------------------------
    def group_mask(self, spec: str) -> np.ndarray:
        """Viewers in a group: ``gender:F``, ``occupation:K-12 student``, ``age:<25``, ``age:>=50``, ``all``."""
        if spec in ("", "all"):
            return np.ones(len(self.viewer_ids), dtype=bool)
        key, _, value = spec.partition(":")
        if key == "gender":
            return self.genders == value.upper()
        if key == "occupation":
            if value not in OCCUPATIONS:
                raise ValueError(f"unknown occupation {value!r}")
            return self.occupations == value
        if key == "age":
            for op, fn in (("<=", np.less_equal), (">=", np.greater_equal), ("<", np.less), (">", np.greater)):
                if value.startswith(op):
                    return fn(self.ages, int(value[len(op):]))
            low, _, high = value.partition("-")
            return (self.ages >= int(low)) & (self.ages <= int(high or low))
        raise ValueError(f"group {spec!r}: use gender:F, occupation:<name>, age:<25, age:25-34 or all")

    def viewer_index(self, viewer_id: int) -> int | None:
        idx = int(viewer_id) - self.config.viewer_id_start
        return idx if 0 <= idx < len(self.viewer_ids) else None

    def movie_index(self) -> dict[str, int]:
        return {slug: i for i, slug in enumerate(self.movie_ids)}

    # --- the platform's metadata records ----------------------------------------------------------
    def viewer_record(self, i: int) -> dict:
        """``/user/<id>`` as the platform sends it."""
        return {"user_id": int(self.viewer_ids[i]), "age": int(self.ages[i]), "occupation": str(self.occupations[i]),
                "gender": str(self.genders[i])}

    def movie_record(self, i: int) -> dict:
        """``/movie/<id>`` as the platform sends it (some numbers as strings, as the platform does)."""
        year = int(self.years[i])
        return {
            "id": self.movie_ids[i], "tmdb_id": 900_000 + i, "imdb_id": f"tt9{i:06d}", "title": self.titles[i],
            "original_title": self.titles[i], "adult": "False",
            "genres": [{"id": GENRES.index(g) + 1, "name": g} for g in self.movie_genres[i]],
            "release_date": f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}", "runtime": int(self.runtimes[i]),
            "original_language": "en", "popularity": f"{float(self.popularity[i]):.5f}",
            "vote_average": round(float(np.clip(self.mu + self.b_i[i] * 2 + 3, 0, 10)), 1),
            "vote_count": int(self.popularity[i] * 300), "budget": 0, "revenue": 0, "status": "Released",
        }

    def records(self):
        """Every viewer and movie record (for ``import_catalog`` or the metadata server)."""
        for i in range(len(self.viewer_ids)):
            yield self.viewer_record(i)
        for i in range(len(self.movie_ids)):
            yield self.movie_record(i)
