"""Pagination, filtering, ordering and search of every list endpoint, strictly validated.

DRF's stock classes quietly ignore a bad ``limit``/``offset``/``ordering``, django-filter ignores
an empty value and search takes any length; here each answers 400 naming the parameter, as the
schema promises (values read by ``portal.api.params``).
"""

from __future__ import annotations

from django.conf import settings
from django_filters import CharFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.pagination import LimitOffsetPagination

from portal.api.params import InvalidQuery, QueryParams


class UsherPagination(LimitOffsetPagination):
    """``?limit=`` (1..MAX, default PAGE_SIZE) and ``?offset=`` (0..); anything else is a 400."""

    max_limit = 1000

    def get_limit(self, request) -> int:
        limit = QueryParams(request).int(self.limit_query_param, minimum=1, maximum=self.max_limit)
        return limit if limit is not None else settings.REST_FRAMEWORK["PAGE_SIZE"]

    def get_offset(self, request) -> int:
        offset = QueryParams(request).int(self.offset_query_param, minimum=0)
        return offset or 0

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_limit})
            else:
                parameter["schema"].update({"minimum": 0})
        return parameters


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, except that a typed filter given an empty value (``?since=``) is a 400
    rather than silently ignored; free-text filters may be empty."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            errors = {
                name: ["is empty: give a value or leave the parameter out"]
                for name, field in filterset_class.base_filters.items()
                if not isinstance(field, CharFilter)
                and name in request.query_params
                and not any(v.strip() for v in request.query_params.getlist(name))
            }
            if errors:
                raise InvalidQuery(errors)
            filterset = self.get_filterset(request, queryset, view)
            if not filterset.is_valid():
                raise InvalidQuery(filterset.errors)
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=`` names only the view's ordering fields (``-`` first for descending); an unknown
    field is a 400 naming ``ordering`` rather than silently ignored."""

    def get_ordering(self, request, queryset, view):
        raw = QueryParams(request).text(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        fields = [term.strip() for term in raw.split(",") if term.strip()]
        valid = sorted(item[0] for item in self.get_valid_fields(queryset, view, {"request": request}))
        bad = [term for term in fields if term.lstrip("-") not in valid]
        if bad or not fields:
            shown = repr(bad[0][:40]) if bad else "nothing"
            raise InvalidQuery({self.ordering_param: f"must be a comma list of {', '.join(valid) or 'no fields'} "
                                                     f"(each may start with -), not {shown}"})
        return fields


    def get_schema_operation_parameters(self, view) -> list[dict]:
        try:
            queryset = view.get_queryset()
            valid = sorted(item[0] for item in self.get_valid_fields(queryset, view, {"request": None}))
        except Exception:  # noqa: BLE001 - a view that cannot say without a request: plain text then
            return super().get_schema_operation_parameters(view)
        return [{
            "name": self.ordering_param, "required": False, "in": "query", "style": "form", "explode": False,
            "description": "Comma-separated fields to sort by; a leading - sorts descending.",
            "schema": {"type": "array", "items": {"type": "string", "enum": [*valid, *(f"-{f}" for f in valid)]}},
        }]


class StrictSearchFilter(SearchFilter):
    """``?search=`` as bounded free text (``portal.api.params.MAX_TEXT`` characters)."""

    def get_search_terms(self, request):
        QueryParams(request).text(self.search_param)
        return super().get_search_terms(request)
