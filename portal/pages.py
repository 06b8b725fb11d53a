"""Portal pages of the shell, rendered inside the admin-style layout (django-unfold)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from portal import selectors, services
from portal.errors import UsherError


class PortalPage(TemplateView):
    """Base: adds the admin site's context (sidebar, branding) so pages sit in the portal shell."""

    title = "Usher"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context["title"] = self.title
        return context


class InboxView(PortalPage):
    template_name = "portal/inbox.html"
    title = "Review inbox"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status", "")
        context["pending"] = selectors.review_request_inbox(user=self.request.user)
        context["recent"] = selectors.review_request_list(filters={"status": status})[:50]
        context["status"] = status
        return context


class ReviewDetailView(PortalPage):
    template_name = "portal/review_detail.html"
    title = "Review"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        review = get_object_or_404(selectors.review_request_list(), pk=self.kwargs["pk"])
        context["review"] = review
        context["history"] = selectors.activity_log_list(
            filters={"target_type": "portal.reviewrequest", "target_id": review.pk}
        )
        context["title"] = f"Review #{review.pk}: {review.title}"
        return context

    def post(self, request, pk: int):
        review = get_object_or_404(selectors.review_request_list(), pk=pk)
        try:
            services.review_request_decide(
                review=review, actor=request.user,
                decision=request.POST.get("decision", ""), comment=request.POST.get("comment", ""),
            )
            messages.success(request, f"Review #{pk}: decision recorded.")
        except UsherError as exc:
            messages.error(request, exc.message)
        return redirect("portal:review", pk=pk)


class ActivityLogView(PortalPage):
    template_name = "portal/activity.html"
    title = "Activity log"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        filters = {k: params.get(k, "") for k in ("actor", "action", "target_type", "since", "until")}
        page = Paginator(selectors.activity_log_list(filters=filters), 50).get_page(params.get("page"))
        context.update({"page_obj": page, "filters": filters})
        return context
