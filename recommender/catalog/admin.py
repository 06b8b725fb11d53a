"""Admin for the catalog: movies and viewers (read-mostly; metadata comes from imports).

The one action asks the platform's metadata API again for the selected rows, through the same
import service as ``manage.py import_catalog --base-url`` (``RECOMMENDER['PLATFORM_METADATA_URL']``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages

from portal.admin_mixins import ModelAdmin
from portal.errors import UsherError
from recommender.catalog import services
from recommender.models import Movie, Viewer


def _refresh(modeladmin, request, *, viewer_ids=(), movie_ids=()) -> None:
    base_url = settings.RECOMMENDER.get("PLATFORM_METADATA_URL", "")
    if not base_url:
        modeladmin.message_user(request, "Set PLATFORM_METADATA_URL to the platform's metadata API first.",
                                level=messages.ERROR)
        return
    try:
        summary = services.catalog_import_url(base_url=base_url, viewer_ids=viewer_ids, movie_ids=movie_ids,
                                              actor=request.user)
    except UsherError as exc:
        modeladmin.message_user(request, exc.message, level=messages.ERROR)
        return
    data = summary.as_dict()
    modeladmin.message_user(
        request, f"{data['records']} fetched: {data['viewers_updated'] + data['movies_updated']} updated, "
                 f"{data['unchanged']} unchanged, {data['quarantined']} quarantined {data['reasons'] or ''}",
        level=messages.WARNING if data["quarantined"] else messages.SUCCESS)


class _CatalogAdmin(ModelAdmin):
    """Rows come from imports: none added here; the action asks the platform API again for them."""

    refresh_ids: str  # the keyword of ``_refresh`` the selected ids go to

    readonly_fields = ["first_seen_at", "enriched_at"]
    show_full_result_count = False
    actions = ["refresh_metadata"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Fetch metadata again from the platform API", permissions=["config_manage"])
    def refresh_metadata(self, request, queryset) -> None:
        _refresh(self, request, **{self.refresh_ids: list(queryset.values_list("id", flat=True)[:1000])})


@admin.register(Movie)
class MovieAdmin(_CatalogAdmin):
    list_display = ["id", "title", "year", "runtime", "popularity", "vote_average", "enriched_at"]
    list_filter = ["year", "original_language", ("enriched_at", admin.EmptyFieldListFilter)]
    search_fields = ["id", "title", "imdb_id"]
    refresh_ids = "movie_ids"


@admin.register(Viewer)
class ViewerAdmin(_CatalogAdmin):
    list_display = ["id", "age", "gender", "occupation", "first_seen_at", "enriched_at"]
    list_filter = ["gender", "occupation", ("enriched_at", admin.EmptyFieldListFilter)]
    search_fields = ["=id"]
    refresh_ids = "viewer_ids"
