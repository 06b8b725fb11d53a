"""Portal pages of serving: deployments (state, workers, changes, history) and provenance (search,
one answer traced, and asking for a viewer's recommendations). Forms call the same services and
runtime as the REST API; a refused change comes back as a message naming what was wrong."""

from __future__ import annotations

import time

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect

from portal.api.params import MAX_TEXT, QueryParams
from portal.errors import UsherError
from portal.pages import PortalPage
from portal.permissions import may
from recommender.models import ModelVersion
from recommender.serving import selectors, services
from recommender.serving.answers import InvalidViewerId, ServedAnswer, parse_viewer_id, recommend_answer
from recommender.serving.forms import DeploymentChangeForm, RollbackForm
from recommender.serving.predlog import spill_pending
from recommender.serving.runtime import get_runtime


def _version_choices(*statuses: str) -> list[ModelVersion]:
    qs = ModelVersion.objects.select_related("registered_model").order_by("-created_at")
    if statuses:
        qs = qs.filter(status__in=statuses)
    return list(qs[:100])


class DeploymentsView(PortalPage):
    """What serves traffic, what every web worker has loaded, and every change with who and why."""

    template_name = "recommender/serving/deployments.html"
    title = "Deployments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        name = self.request.GET.get("name", "default")
        deployment = selectors.deployment_get(name=name)
        config = get_runtime().config
        changes = selectors.deployment_change_list(deployment=deployment)[:50] if deployment else []
        context.update({
            "deployment": selectors.deployment_describe(deployment=deployment),
            "workers": selectors.serving_worker_status_list(state_dir=config.state_dir),
            "spill": spill_pending(config.spill_dir),
            "changes": changes,
            "approved_versions": _version_choices("approved"),
            "deployable_versions": _version_choices("approved", "candidate"),
            "can_operate": may(self.request.user, "release.operate"),
            "summary": selectors.prediction_log_summary(),
            "unreviewed": selectors.deployment_unreviewed(deployment=deployment) if deployment else [],
        })
        context.setdefault("change_form", self._change_form(context, None))
        context.setdefault("rollback_form", RollbackForm())
        return context

    @staticmethod
    def _change_form(context: dict, data) -> DeploymentChangeForm:
        return DeploymentChangeForm(data, deployment=context["deployment"] or {},
                                    approved=context["approved_versions"], deployable=context["deployable_versions"])

    def post(self, request):
        # The services check the role (logging a refusal) and the one door to live traffic.
        action = request.POST.get("action")
        if action == "rollback":
            form = RollbackForm(request.POST)
            if form.submit(lambda data: services.deployment_rollback(actor=request.user, reason=data["reason"])) is None:
                return self.form_invalid(rollback_form=form)
            messages.success(request, "Emergency rollback: production is back on the previous version.")
        elif action == "change":
            form = self._change_form(self.get_context_data(), request.POST)
            deployment = form.submit(lambda data: services.deployment_update(actor=request.user,
                                                                             **form.service_params()))
            if deployment is None:
                return self.form_invalid(change_form=form)
            messages.success(request, f"Deployment at revision {deployment.revision}.")
        else:
            messages.error(request, f"unknown action {action!r}")
        return redirect("recommender:serving_deployments")


class ProvenanceView(PortalPage):
    """Find answers by request id, or by viewer and time; ask for a viewer's recommendations."""

    template_name = "recommender/serving/provenance.html"
    title = "Provenance"

    def get(self, request, *args, **kwargs):
        request_id = request.GET.get("request_id", "").strip().replace("-", "")
        if request_id:
            return redirect("recommender:serving_provenance_detail", request_id=request_id)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        filters = {k: params.get(k, "")[:MAX_TEXT] for k in ("viewer", "since", "until", "status", "endpoint", "arm",
                                                             "fallback")}
        query = QueryParams(self.request, page=True)  # a bad value is named and left out of the filter
        parsed = {"viewer": query.int("viewer"), "since": query.time("since"), "until": query.time("until"),
                  "status": query.int("status", minimum=0, maximum=999),
                  "endpoint": query.choice("endpoint", ("plain", "api")), "arm": query.text("arm"),
                  "fallback": query.choice("fallback", ("yes", "no")), "model_version": query.id("model_version")}
        query.report()
        try:
            records = selectors.prediction_log_list(filters=parsed)
            page = Paginator(records, 50).get_page(params.get("page"))
        except UsherError as exc:
            messages.error(self.request, exc.message)
            page = Paginator([], 50).get_page(1)
        context.update({"filters": filters, "page_obj": page, "answer": self._try(params.get("try_viewer", "")),
                        "endpoint_choices": [("plain", "/recommend"), ("api", "JSON API")],
                        "fallback_choices": [("no", "model only"), ("yes", "fallback only")]})
        return context

    def _try(self, raw: str) -> ServedAnswer | None:
        """'Ask for recommendations' on the page: the same answer (and log record) as the JSON API."""
        if not raw:
            return None
        started = time.perf_counter()
        try:
            viewer_id = parse_viewer_id(raw.strip())
        except InvalidViewerId as exc:
            messages.error(self.request, str(exc))
            return None
        return recommend_answer(viewer_id=viewer_id, k=get_runtime().config.k, endpoint="api",
                                client=f"portal:{self.request.user.get_username()}", started=started, explain=True)


class ProvenanceDetailView(PortalPage):
    """One answer traced: request → model version → training run → snapshot → code and libraries."""

    template_name = "recommender/serving/provenance_detail.html"
    title = "Provenance of an answer"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            record = selectors.prediction_log_get(request_id=self.kwargs["request_id"])
        except UsherError as exc:
            raise Http404(exc.message)
        if record is None:
            raise Http404("No prediction with this request id (records are written within seconds of the answer).")
        context["p"] = selectors.prediction_provenance(record=record)
        context["title"] = f"Provenance of {record.request_id.hex}"
        return context
