"""Portal pages of the shell, rendered inside the admin-style layout (django-unfold).

Routes wrap these views with ``admin.site.admin_view`` (signed in with a role); each page is a
thin reader of selectors, and every write goes through a service, as in the API.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from portal import selectors, services
from portal.errors import UsherError
from portal.filters import ActivityLogFilter
from portal.forms import ReviewDecisionForm
from portal.models import ApiToken, ReviewRequest
from portal.permissions import user_roles
from portal.reviews import target_url


class PortalPage(TemplateView):
    """Base: adds the admin site's context (sidebar, branding) so pages sit in the portal shell."""

    title = "Usher"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context["title"] = self.title
        context["usher_roles"] = sorted(user_roles(self.request.user))
        return context

    def form_invalid(self, **forms) -> HttpResponse:
        """The page drawn again with ``forms`` as typed and their errors beside the fields (nothing
        was stored): a 400, or the status of the service's refusal (403, 409)."""
        status = max((getattr(form, "status", 400) for form in forms.values()), default=400)
        if status == 403:
            # A role that may not act is not shown the form: the refusal is said as a message on
            # the page it came from.
            for form in forms.values():
                for message in form.non_field_errors():
                    messages.error(self.request, message)
            return redirect(self.request.get_full_path())
        if status != 400:
            # A conflict is about the object's state, which may also hide the form: said at the top too.
            for form in forms.values():
                for message in form.non_field_errors():
                    messages.error(self.request, message)
        return self.render_to_response(self.get_context_data(**forms), status=status)


class InboxView(PortalPage):
    """What waits for the signed-in user, and every review with a status filter."""

    template_name = "portal/inbox.html"
    title = "Review inbox"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status", "")
        if status not in ReviewRequest.Status.values:
            status = ""
        context["pending"] = list(selectors.review_request_inbox(user=self.request.user)[:200])
        context["recent"] = selectors.review_request_list(filters={"status": status})[:50]
        context["status"] = status
        context["statuses"] = ReviewRequest.Status.choices
        return context


def _review_target_url(review: ReviewRequest) -> str | None:
    """The portal page of what ``review`` is about (``portal.reviews.target_url``)."""
    return target_url(review.target_type, review.target_id, kind=review.kind)


class ReviewDetailView(PortalPage):
    """One review: its target, evidence, history, and the decision form for whoever may decide."""

    template_name = "portal/review_detail.html"
    title = "Review"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        review = get_object_or_404(selectors.review_request_list(), pk=self.kwargs["pk"])
        context["review"] = review
        context["may_decide"] = (
            review.status == ReviewRequest.Status.PENDING
            and selectors.review_request_may_decide(review=review, user=self.request.user)
        )
        context["is_requester"] = review.requester_id == self.request.user.pk
        context["target_url"] = _review_target_url(review)
        context["history"] = selectors.activity_log_list(
            filters={"target_type": "portal.reviewrequest", "target_id": review.pk}
        ).order_by("seq")
        context["title"] = f"Review #{review.pk}: {review.title}"
        context.setdefault("form", ReviewDecisionForm())
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        review = get_object_or_404(selectors.review_request_list(), pk=pk)
        form = ReviewDecisionForm(request.POST)
        decided = form.submit(lambda data: services.review_request_decide(
            review=review, actor=request.user, decision=request.POST.get("decision", ""), comment=data["comment"]))
        if decided is None:
            return self.form_invalid(form=form)
        messages.success(request, f"Review #{pk}: decision recorded.")
        return redirect("portal:review", pk=pk)


class ActivityLogView(PortalPage):
    """The activity log with filters (actor, action, target, time), 50 entries a page."""

    template_name = "portal/activity.html"
    title = "Activity log"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        filterset = ActivityLogFilter(params, queryset=selectors.activity_log_list())
        entries = filterset.qs if filterset.is_valid() else selectors.activity_log_list().none()
        page = Paginator(entries, 50).get_page(params.get("page"))
        query = params.copy()
        query.pop("page", None)
        context.update({
            "page_obj": page,
            "filters": {k: params.get(k, "") for k in ActivityLogFilter.base_filters},
            "filter_errors": filterset.errors,
            "query": query.urlencode(),
        })
        return context


class ApiTokenView(PortalPage):
    """Create, rotate or revoke my API token (the same service path as ``/api/v1/auth/token``)."""

    template_name = "portal/api_token.html"
    title = "My API token"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["token"] = ApiToken.objects.filter(user=self.request.user).first()
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        try:
            if action == "create":
                _, key = services.api_token_create(user=request.user)
                # Shown once, in this answer only: the key is kept nowhere (not even in the session),
                # only its digest is stored.
                messages.success(request, "A new token was created; copy it now, it is shown once.")
                response = self.render_to_response(self.get_context_data(new_token=key))
                response["Cache-Control"] = "no-store"
                return response
            elif action == "revoke":
                deleted = services.api_token_revoke(user=request.user)
                messages.success(request, "Your API token was revoked." if deleted else "You had no token.")
            else:
                messages.error(request, "Unknown action: choose create or revoke.")
        except UsherError as exc:
            messages.error(request, exc.message)
        return redirect("portal:api-token")
