"""Admin of the portal shell (django-unfold): the activity log is read-only, reviews are decided
through the review service; users, their roles, passwords and access change only through the user
service (a generated password shown once on creation; a role change, a deactivation or a password
reset revokes tokens and sessions at once), and API tokens are listed without their keys and
revoked through the token service. Users, groups and tokens are for admins only. Every action
declares the work it does (``portal.admin_mixins``); schedule edits are written to the activity log."""

from __future__ import annotations

from contextvars import ContextVar

from axes.admin import AccessAttemptAdmin as BaseAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django_celery_beat.admin import ClockedScheduleAdmin as BaseClockedScheduleAdmin
from django_celery_beat.admin import CrontabScheduleAdmin as BaseCrontabScheduleAdmin
from django_celery_beat.admin import IntervalScheduleAdmin as BaseIntervalScheduleAdmin
from django_celery_beat.admin import PeriodicTaskAdmin as BasePeriodicTaskAdmin
from django_celery_beat.admin import PeriodicTaskForm, TaskSelectWidget
from django_celery_beat.admin import SolarScheduleAdmin as BaseSolarScheduleAdmin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from django_celery_results.admin import GroupResultAdmin as BaseGroupResultAdmin
from django_celery_results.admin import TaskResultAdmin as BaseTaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult
from unfold.forms import AdminPasswordChangeForm, UserChangeForm
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from portal import services
from portal.admin_mixins import AdminOnlyMixin, ModelAdmin, WorkPermissionsMixin
from portal.errors import UsherError
from portal.models import ActivityLogEntry, ActivityLogHead, ApiToken, ReviewRequest
from portal.permissions import user_role
from portal.roles import ROLE_NAMES


class ReadOnlyAdmin(ModelAdmin):
    """No add, change or delete: for append-only records."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ActivityLogEntry)
class ActivityLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "target_type", "target_id", "target_repr"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "action", "target_repr", "target_id"]
    date_hierarchy = "created_at"

    def get_actions(self, request):
        return {}  # not even "delete selected"


@admin.register(ActivityLogHead)
class ActivityLogHeadAdmin(AdminOnlyMixin, ReadOnlyAdmin):
    list_display = ["id", "seq", "hash"]

    def get_actions(self, request):
        return {}


@admin.register(ReviewRequest)
class ReviewRequestAdmin(ModelAdmin):
    list_display = ["id", "kind", "title", "status", "requester_label", "assigned_role", "decided_by", "due_at"]
    list_filter = ["status", "kind", "assigned_role"]
    search_fields = ["title", "target_repr", "requester_label"]
    readonly_fields = [f.name for f in ReviewRequest._meta.fields]
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _decide(self, request, queryset, decision: str, comment: str) -> None:
        for review in queryset:
            try:
                services.review_request_decide(review=review, actor=request.user, decision=decision, comment=comment)
                self.message_user(request, f"#{review.pk}: {decision} recorded.")
            except UsherError as exc:
                self.message_user(request, f"#{review.pk}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Approve selected reviews", permissions=["review_decide"])
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, queryset, "approve", "approved from the admin list")

    @admin.action(description="Reject selected reviews", permissions=["review_decide"])
    def reject_selected(self, request, queryset) -> None:
        self._decide(request, queryset, "reject", "rejected from the admin list")


# --- users and roles ------------------------------------------------------------------------
User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)

# The signed-in admin of the request being served, for the password form's save (Django's
# user_change_password view builds the form without the request).
_admin_actor: ContextVar = ContextVar("usher_admin_actor", default=None)


class UserCreateForm(forms.ModelForm):
    """Name, e-mail and role: the password is generated by the service and shown once."""

    role = forms.ChoiceField(choices=[(r, r) for r in ROLE_NAMES], widget=UnfoldAdminSelectWidget)

    class Meta:
        model = User
        fields = ["username", "email"]
        widgets = {"username": UnfoldAdminTextInputWidget, "email": UnfoldAdminTextInputWidget}


class UserRoleChangeForm(UserChangeForm):
    """Profile fields, the one role and the active flag; the role and the flag are applied by the
    user service (staff and superuser follow the role; per-user permissions do not exist)."""

    role = forms.ChoiceField(choices=[(r, r) for r in ROLE_NAMES], widget=UnfoldAdminSelectWidget,
                             help_text="Changing the role revokes the user's API tokens and ends their sessions.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = user_role(self.instance) or "viewer"


class ServicePasswordChangeForm(AdminPasswordChangeForm):
    """An admin sets another user's password through the user service (tokens and sessions end)."""

    def save(self, commit: bool = True):
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return services.user_password_reset(user=self.user, password=password, actor=_admin_actor.get())


@admin.register(User)
class UserAdmin(AdminOnlyMixin, BaseUserAdmin, ModelAdmin):
    form = UserRoleChangeForm
    add_form = UserCreateForm
    change_password_form = ServicePasswordChangeForm
    add_fieldsets = ((None, {"fields": ("username", "email", "role")}),)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Role and access", {"fields": ("role", "is_active", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ["is_staff", "is_superuser", "last_login", "date_joined"]
    list_display = ["username", "email", "role", "is_active", "is_staff", "is_superuser", "last_login"]
    list_filter = ["groups", "is_active"]
    filter_horizontal: tuple = ()
    actions = ["deactivate_selected", "revoke_tokens"]

    @admin.display(description="role")
    def role(self, obj) -> str:
        return user_role(obj) or "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: the activity log keeps pointing at the user

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def user_change_password(self, request, id, form_url=""):
        token = _admin_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _admin_actor.reset(token)

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        # A new user is made by the service, which generates the password and logs the step.
        user, password = services.user_create(
            username=form.cleaned_data["username"], role=form.cleaned_data["role"],
            email=form.cleaned_data.get("email", ""), actor=request.user,
        )
        self.message_user(request, f"Created {user.username}; password (shown once): {password}",
                          level=messages.WARNING)
        return user

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            return  # saved by save_form through the service
        profile = [f for f in form.changed_data if f not in ("role", "is_active")]
        if "is_active" in form.changed_data:
            obj.is_active = form.initial.get("is_active", True)  # applied below, by the service
        super().save_model(request, obj, form, change)
        if profile:
            services.activity_log_record(actor=request.user, action="user.changed", target=obj,
                                         data={"fields": sorted(profile)})
        try:
            if "role" in form.changed_data:
                services.user_set_role(user=obj, role=form.cleaned_data["role"], actor=request.user)
            if "is_active" in form.changed_data:
                if form.cleaned_data["is_active"]:
                    services.user_reactivate(user=obj, actor=request.user)
                else:
                    services.user_deactivate(user=obj, actor=request.user, reason="from the admin form")
        except UsherError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)

    def save_related(self, request, form, formsets, change) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description="Deactivate selected users (their tokens and sessions end)",
                  permissions=["users_manage"])
    def deactivate_selected(self, request, queryset) -> None:
        for user in queryset:
            try:
                services.user_deactivate(user=user, actor=request.user, reason="from the admin list")
                self.message_user(request, f"{user.username}: deactivated.")
            except UsherError as exc:
                self.message_user(request, f"{user.username}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Revoke the selected users' API tokens", permissions=["users_manage"])
    def revoke_tokens(self, request, queryset) -> None:
        for user in queryset:
            count = services.api_token_revoke(user=user, actor=request.user, reason="from the admin list")
            self.message_user(request, f"{user.username}: {count} token(s) revoked.")


@admin.register(Group)
class GroupAdmin(AdminOnlyMixin, BaseGroupAdmin, ModelAdmin):
    """The five roles, read only: their permissions are exactly ``portal.roles.ADMIN_MODELS``
    (synced after each migrate), so nothing is granted here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(AdminOnlyMixin, ModelAdmin):
    """Who holds a token and when it was last used; the key itself is stored nowhere."""

    list_display = ["user", "prefix", "created_at", "last_used_at"]
    search_fields = ["user__username", "prefix"]
    fields = ["user", "prefix", "created_at", "last_used_at"]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # a token is made by its owner (portal page or API), its key shown once

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj) -> None:
        services.api_token_revoke(user=obj.user, actor=request.user, reason="deleted in the admin")

    @admin.action(description="Revoke the selected tokens", permissions=["users_manage"])
    def revoke_selected(self, request, queryset) -> None:
        for user in {token.user for token in queryset.select_related("user")}:
            count = services.api_token_revoke(user=user, actor=request.user, reason="from the admin list")
            self.message_user(request, f"{user.username}: {count} token(s) revoked.")


# --- login lockouts (django-axes' admin, admin-only by the table); its action declares its work
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)

    @admin.register(AccessAttempt)
    class AccessAttemptAdmin(WorkPermissionsMixin, BaseAccessAttemptAdmin):
        @admin.action(description="Clean up expired attempts", permissions=["users_manage"])
        def cleanup_expired_attempts(self, request, queryset) -> None:
            super().cleanup_expired_attempts(request, queryset)


# --- Celery beat schedules and results, in the portal's style; schedule edits are logged ---
for _model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule, TaskResult, GroupResult):
    admin.site.unregister(_model)


class UnfoldTaskSelectWidget(UnfoldAdminSelectWidget, TaskSelectWidget):
    pass


class UnfoldPeriodicTaskForm(PeriodicTaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].widget = UnfoldAdminTextInputWidget()
        self.fields["regtask"].widget = UnfoldTaskSelectWidget()


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BasePeriodicTaskAdmin, ModelAdmin):
    form = UnfoldPeriodicTaskForm

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        services.activity_log_record(
            actor=request.user, action="schedule.changed" if change else "schedule.created", target=obj,
            data={"task": obj.task, "enabled": obj.enabled, "fields": sorted(form.changed_data)},
        )

    def delete_model(self, request, obj) -> None:
        services.activity_log_record(actor=request.user, action="schedule.deleted", target=obj,
                                     data={"task": obj.task})
        super().delete_model(request, obj)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(BaseIntervalScheduleAdmin, ModelAdmin):
    pass


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(BaseCrontabScheduleAdmin, ModelAdmin):
    pass


@admin.register(SolarSchedule)
class SolarScheduleAdmin(BaseSolarScheduleAdmin, ModelAdmin):
    pass


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(BaseClockedScheduleAdmin, ModelAdmin):
    pass


@admin.register(TaskResult)
class TaskResultAdmin(BaseTaskResultAdmin, ModelAdmin):
    pass


@admin.register(GroupResult)
class GroupResultAdmin(BaseGroupResultAdmin, ModelAdmin):
    pass
