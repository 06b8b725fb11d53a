"""The portal's shell: unfold's admin site, entered by every active user holding an Usher role.

The site is ``django.contrib.admin.site`` (set as the default site by ``portal.apps.PortalAdminConfig``),
so every module keeps importing ``admin.site``. What a role sees inside it is decided by the model
permissions of ``portal.roles.ADMIN_MODELS``: the admin's own pages are for admins, the portal's
pages (served through ``admin.site.admin_view``) for every role.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from unfold.forms import AdminOwnPasswordChangeForm, AuthenticationForm
from unfold.sites import UnfoldAdminSite

from portal.permissions import user_roles


class PortalLoginForm(AuthenticationForm):
    """Unfold's login form, letting in every active user with a role (not only ``is_staff``)."""

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active:
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        if not user_roles(user):
            raise forms.ValidationError(
                "This account holds no Usher role; ask an admin to give it one.", code="no_role"
            )


class OwnPasswordChangeForm(AdminOwnPasswordChangeForm):
    """A user's own password change, through the user service: every API token and session of
    the user ends (the page's own session continues, re-keyed by the view)."""

    def save(self, commit: bool = True):
        from portal.services.users import user_password_reset

        return user_password_reset(user=self.user, password=self.cleaned_data["new_password1"], actor=self.user)


class PortalAdminSite(UnfoldAdminSite):
    login_form = PortalLoginForm
    site_header = "Usher"
    site_title = "Usher"
    index_title = "Dashboard"

    def has_permission(self, request: HttpRequest) -> bool:
        """Signed in, active and holding a role: the portal's pages are open to every role."""
        user = request.user
        return bool(user.is_active and user_roles(user))

    def password_change(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from django.contrib.auth.views import PasswordChangeView
        from django.urls import reverse

        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=OwnPasswordChangeForm,
            success_url=reverse(f"{self.name}:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            **({"template_name": self.password_change_template} if self.password_change_template else {}),
        )(request)
