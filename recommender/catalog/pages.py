"""Portal pages of the data intake: catalog browse and search, a movie, a viewer with their history,
ingestion status per source, and the quarantine browser (templates under templates/recommender/catalog/)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404

from portal.api.params import INT64_MAX, INT64_MIN, MAX_TEXT, QueryParams
from portal.errors import UsherError
from portal.pages import PortalPage
from recommender.catalog import selectors
from recommender.catalog.schema import OCCUPATIONS
from recommender.ingest import selectors as ingest_selectors
from recommender.models import Viewer


def _int_or_blank(query: QueryParams, name: str, minimum: int, maximum: int) -> int | str:
    """A whole-number filter, or "" (no filter) when absent or bad; ``query.report()`` says which."""
    value = query.int(name, minimum=minimum, maximum=maximum)
    return "" if value is None else value


class CatalogView(PortalPage):
    """Browse and search movies by title, genre and year."""

    template_name = "recommender/catalog/movies.html"
    title = "Catalog"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        query = QueryParams(self.request, page=True)
        filters = {"q": query.text("q", default="").strip(), "genre": query.text("genre", default="").strip(),
                   "year": _int_or_blank(query, "year", 0, 9999)}
        query.report()
        page = Paginator(selectors.movie_list(filters=filters), 50).get_page(params.get("page"))
        counts = selectors.catalog_counts()
        labels = {"movies": "Movies", "viewers": "Viewers", "ratings": "Ratings", "watch_sessions": "Watch sessions",
                  "quarantined": "Quarantined lines", "events_last_hour": "Events, last hour"}
        context.update({"page_obj": page, "filters": filters, "genres": selectors.genre_names(),
                        "counts": [(labels[key], value) for key, value in counts.items()]})
        return context


class MovieView(PortalPage):
    """One movie: metadata, ratings histogram, watch figures, latest ratings."""

    template_name = "recommender/catalog/movie.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        movie = selectors.movie_get(movie_id=self.kwargs["movie_id"])
        if movie is None:
            raise Http404(f"no movie {self.kwargs['movie_id']!r}")
        histogram = selectors.movie_rating_histogram(movie_id=movie.id)
        context.update({
            "movie": movie, "title": movie.title or movie.id, "stats": selectors.movie_stats(movie_id=movie.id),
            "histogram": histogram,
            "chart": {"labels": [f"{k}★" for k in histogram], "values": list(histogram.values())},
            "recent": selectors.movie_recent_ratings(movie_id=movie.id, limit=20),
        })
        return context


class ViewerListView(PortalPage):
    """Viewers, searchable by id and filtered by demographics."""

    template_name = "recommender/catalog/viewers.html"
    title = "Viewers"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        query = QueryParams(self.request, page=True)
        filters = {"id": _int_or_blank(query, "id", INT64_MIN, INT64_MAX), "gender": query.text("gender", default=""),
                   "occupation": query.text("occupation", default=""), "stub": query.text("stub", default="")}
        query.report()
        page = Paginator(selectors.viewer_list(filters=filters), 50).get_page(params.get("page"))
        context.update({"page_obj": page, "filters": filters, "occupations": OCCUPATIONS,
                        "gender_choices": Viewer.Gender.choices,
                        "stub_choices": [("true", "stubs only"), ("false", "with metadata")]})
        return context


class ViewerView(PortalPage):
    """One viewer and their history: ratings, watch sessions, recommendations received."""

    template_name = "recommender/catalog/viewer.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        viewer = selectors.viewer_get(viewer_id=self.kwargs["viewer_id"])
        if viewer is None:
            raise Http404(f"no viewer {self.kwargs['viewer_id']}")
        context.update({"viewer": viewer, "title": f"Viewer {viewer.id}",
                        "history": selectors.viewer_history(viewer_id=viewer.id, limit=50)})
        return context


class IngestionStatusView(PortalPage):
    """Each ingestion source: lines read, stored, duplicates, quarantined, lag, rate, last error."""

    template_name = "recommender/catalog/ingestion.html"
    title = "Ingestion status"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = QueryParams(self.request, page=True)
        filters = {"kind": query.text("kind", default=""), "name": query.text("name", default=""),
                   "failing": query.text("failing", default="")}
        query.report()
        sources = list(ingest_selectors.ingest_source_list(filters=filters))
        context.update({"sources": sources, "filters": filters,
                        "kinds": sorted({s.kind for s in ingest_selectors.ingest_source_list()})})
        return context


class QuarantineView(PortalPage):
    """Quarantined lines and records with their reasons; counts by reason as a chart."""

    template_name = "recommender/catalog/quarantine.html"
    title = "Quarantine"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        filters = {k: params.get(k, "").strip()[:MAX_TEXT] for k in ("source", "reason_code", "q", "since", "until")}
        query = QueryParams(self.request, page=True)  # a bad time is named and left out of the filter
        parsed = {**{k: query.text(k, default="", max_length=255).strip() for k in ("source", "reason_code", "q")},
                  "since": query.time("since"), "until": query.time("until")}
        query.report()
        try:
            counts = ingest_selectors.quarantine_counts(filters=parsed)
            lines = ingest_selectors.quarantined_line_list(filters=parsed)
        except UsherError as exc:
            context.update({"error": exc.message, "filters": filters, "counts": [], "page_obj": None})
            return context
        page = Paginator(lines, 50).get_page(params.get("page"))
        context.update({
            "filters": filters, "counts": counts, "page_obj": page,
            "total": sum(row["count"] for row in counts),
            "chart": {"labels": [row["reason_code"] for row in counts], "values": [row["count"] for row in counts]},
            "sources": selectors.quarantine_sources(),
        })
        return context
