"""REST API of the catalog: movies and viewers (read-only), a viewer with their history.

Lists are paginated (limit/offset) and filtered with django-filter; each list answers in a fixed
number of queries whatever the page size.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets

from portal.filters import BoolFilter, TextFilter, int_filter
from recommender.catalog import selectors
from recommender.models import Movie, Rating, RecommendationRequest, Viewer, WatchSession


class MovieSerializer(serializers.ModelSerializer):
    stub = serializers.SerializerMethodField()

    class Meta:
        model = Movie
        fields = ["id", "title", "original_title", "year", "release_date", "genres", "runtime", "original_language",
                  "popularity", "vote_average", "vote_count", "tmdb_id", "imdb_id", "adult", "budget", "revenue",
                  "status", "first_seen_at", "enriched_at", "stub"]

    def get_stub(self, obj: Movie) -> bool:
        return obj.enriched_at is None


class MovieDetailSerializer(MovieSerializer):
    extra = serializers.JSONField()
    stats = serializers.SerializerMethodField()
    rating_histogram = serializers.SerializerMethodField()

    class Meta(MovieSerializer.Meta):
        fields = MovieSerializer.Meta.fields + ["extra", "stats", "rating_histogram"]

    @extend_schema_field(inline_serializer("MovieStats", {
        "ratings": serializers.IntegerField(), "mean_rating": serializers.FloatField(allow_null=True),
        "rating_events": serializers.IntegerField(), "watch_sessions": serializers.IntegerField(),
        "watch_viewers": serializers.IntegerField(), "minutes_watched": serializers.IntegerField(),
        "last_watched": serializers.DateTimeField(allow_null=True)}))
    def get_stats(self, obj: Movie) -> dict:
        return selectors.movie_stats(movie_id=obj.id)

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(), help_text="stars 1–5 → count"))
    def get_rating_histogram(self, obj: Movie) -> dict[str, int]:
        return {str(k): v for k, v in selectors.movie_rating_histogram(movie_id=obj.id).items()}


class ViewerSerializer(serializers.ModelSerializer):
    stub = serializers.SerializerMethodField()

    class Meta:
        model = Viewer
        fields = ["id", "age", "age_band", "gender", "occupation", "first_seen_at", "enriched_at", "stub"]

    def get_stub(self, obj: Viewer) -> bool:
        return obj.enriched_at is None


class _RatingOut(serializers.ModelSerializer):
    class Meta:
        model = Rating
        fields = ["movie_id", "rating", "time"]


class _SessionOut(serializers.ModelSerializer):
    class Meta:
        model = WatchSession
        fields = ["movie_id", "started_at", "last_seen_at", "first_minute", "last_minute", "highest_minute",
                  "minutes_watched"]


class _RecommendationOut(serializers.ModelSerializer):
    class Meta:
        model = RecommendationRequest
        fields = ["time", "server", "status", "movie_ids", "response_ms", "error"]


class ViewerHistorySerializer(serializers.Serializer):
    counts = inline_serializer("ViewerHistoryCounts", {
        "ratings": serializers.IntegerField(), "watch_sessions": serializers.IntegerField(),
        "recommendations": serializers.IntegerField()})
    ratings = _RatingOut(many=True)
    watch_sessions = _SessionOut(many=True)
    recommendations = _RecommendationOut(many=True)


class ViewerDetailSerializer(ViewerSerializer):
    history = serializers.SerializerMethodField()

    class Meta(ViewerSerializer.Meta):
        fields = ViewerSerializer.Meta.fields + ["history"]

    @extend_schema_field(ViewerHistorySerializer)
    def get_history(self, obj: Viewer) -> dict:
        limit = self.context.get("history_limit", 50)
        return ViewerHistorySerializer(selectors.viewer_history(viewer_id=obj.id, limit=limit)).data


class MovieFilter(django_filters.FilterSet):
    q = TextFilter(method="_q", help_text="title or id contains")
    genre = TextFilter(method="_genre", help_text="a genre name, e.g. Drama")
    original_language = TextFilter()
    year = int_filter(0, 9999)
    year_min = int_filter(0, 9999, field_name="year", lookup_expr="gte")
    year_max = int_filter(0, 9999, field_name="year", lookup_expr="lte")
    stub = BoolFilter(field_name="enriched_at", lookup_expr="isnull",
                      help_text="true: only movies without metadata")

    class Meta:
        model = Movie
        fields = ["q", "genre", "year", "year_min", "year_max", "stub", "original_language"]

    def _q(self, queryset, name, value):
        return queryset & selectors.movie_list(filters={"q": value})

    def _genre(self, queryset, name, value):
        return queryset & selectors.movie_list(filters={"genre": value})


class ViewerFilter(django_filters.FilterSet):
    gender = TextFilter()
    occupation = TextFilter()
    age = int_filter(0, 200)
    age_min = int_filter(0, 200, field_name="age", lookup_expr="gte")
    age_max = int_filter(0, 200, field_name="age", lookup_expr="lte")
    stub = BoolFilter(field_name="enriched_at", lookup_expr="isnull",
                      help_text="true: only viewers without metadata")

    class Meta:
        model = Viewer
        fields = ["gender", "occupation", "age", "age_min", "age_max", "stub"]


class MovieViewSet(viewsets.ReadOnlyModelViewSet):
    """Movies of the catalog; filter by title, genre, year; the detail adds ratings and watch figures."""

    filterset_class = MovieFilter
    ordering_fields = ["id", "title", "year", "popularity", "vote_average", "first_seen_at"]
    search_fields = ["title", "id"]
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.movie_list()

    def get_serializer_class(self):
        return MovieDetailSerializer if self.action == "retrieve" else MovieSerializer


class ViewerViewSet(viewsets.ReadOnlyModelViewSet):
    """Viewers; filter by demographics; the detail adds their history (latest 50 of each kind)."""

    filterset_class = ViewerFilter
    ordering_fields = ["id", "age", "first_seen_at"]
    search_fields = ["occupation"]

    def get_queryset(self):
        return selectors.viewer_list()

    def get_serializer_class(self):
        return ViewerDetailSerializer if self.action == "retrieve" else ViewerSerializer
