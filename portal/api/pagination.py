"""Pagination and filtering of every list endpoint: limit/offset, strictly validated.

DRF's stock classes quietly ignore a bad ``limit``/``offset`` and django-filter ignores an
empty value; here both answer 400 naming the parameter, as the schema promises.
"""

from __future__ import annotations

from django.conf import settings
from django_filters import CharFilter
from django_filters.rest_framework import DjangoFilterBackend
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
