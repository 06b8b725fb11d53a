"""Admin of the model registry: versions are immutable (actions call services); aliases read-only."""

from __future__ import annotations

from django.contrib import admin, messages

from portal.admin_mixins import ModelAdmin, ReadOnlyAdmin
from portal.errors import UsherError
from recommender.models import ModelAlias, ModelVersion, RegisteredModel
from recommender.registry import services


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ModelAdmin):
    list_display = ["__str__", "algorithm", "status", "artifact_kind", "artifact_size", "training_run", "created_at"]
    list_filter = ["status", "algorithm", "registered_model"]
    search_fields = ["artifact_sha256", "description"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["archive_selected"]

    def has_add_permission(self, request) -> bool:  # versions are registered by training runs only
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _each(self, request, queryset, fn, done: str) -> None:
        for version in queryset:
            try:
                fn(version)
                self.message_user(request, f"{version}: {done}")
            except UsherError as exc:
                self.message_user(request, f"{version}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Archive selected versions", permissions=["model_build"])
    def archive_selected(self, request, queryset) -> None:
        self._each(request, queryset, lambda v: services.model_version_set_status(
            version=v, status="archived", actor=request.user, reason="archived from the admin"), "archived")


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyAdmin):
    """Aliases move only through ``model_alias_move`` (the registry page, the API, releases)."""

    list_display = ["name", "version", "moved_at", "moved_by_label", "reason"]
