"""REST API of event intake: submit lines, ingestion sources and their status, the quarantine."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.params import QueryParams, text_param, time_param
from portal.errors import ValidationError
from portal.permissions import Can
from recommender.ingest import selectors, services
from recommender.ingest.errors import PayloadTooLarge
from recommender.models import IngestSource, QuarantinedLine


class PlainTextParser(BaseParser):
    """``text/plain``: one event line per line."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        return stream.read().decode("utf-8", "surrogateescape")


class IngestSummarySerializer(serializers.Serializer):
    source = serializers.CharField()
    lines_read = serializers.IntegerField()
    stored = serializers.DictField(
        child=serializers.IntegerField(), help_text="By type: rating, watch, recommendation."
    )
    stored_total = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    quarantined = serializers.DictField(child=serializers.IntegerField(), help_text="By reason code.")
    quarantined_total = serializers.IntegerField()


class EventsIngestApi(APIView):
    """Submit a batch of raw event lines; answers what happened to them (operators and admins)."""

    permission_classes = [IsAuthenticated, Can("events.ingest")]
    parser_classes = [JSONParser, PlainTextParser]

    class EventsIngestInputSerializer(serializers.Serializer):
        lines = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False))
        source = serializers.CharField(required=False, max_length=200)

    @extend_schema(
        request={
            "application/json": EventsIngestInputSerializer,
            "text/plain": OpenApiTypes.STR,
        },
        parameters=[OpenApiParameter("source", str, description="source name (default: http:<username>)")],
        responses={200: IngestSummarySerializer},
        examples=[
            OpenApiExample(
                "lines", value={"lines": ["2022-02-25T13:38:49,284508,GET /rate/audition+1999=3"]}, request_only=True
            )
        ],
    )
    def post(self, request) -> Response:
        limits = settings.RECOMMENDER
        max_bytes, max_lines = limits["EVENTS_MAX_BYTES"], limits["EVENTS_MAX_LINES"]
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > max_bytes:
            raise PayloadTooLarge(
                f"request body of {length} bytes exceeds EVENTS_MAX_BYTES={max_bytes}", detail={"max_bytes": max_bytes}
            )
        try:
            data = request.data
        except RequestDataTooBig:
            raise PayloadTooLarge(f"request body exceeds EVENTS_MAX_BYTES={max_bytes}", detail={"max_bytes": max_bytes})
        if isinstance(data, str):
            lines = data.splitlines()
            name = request.query_params.get("source")
        else:
            if not isinstance(data, dict) or "lines" not in data:
                raise ValidationError('send {"lines": ["…", …]} as JSON, or the lines as text/plain')
            if isinstance(data["lines"], list) and len(data["lines"]) > max_lines:
                raise PayloadTooLarge(
                    f"{len(data['lines'])} lines exceed EVENTS_MAX_LINES={max_lines}", detail={"max_lines": max_lines}
                )
            payload = self.EventsIngestInputSerializer(data=data)
            payload.is_valid(raise_exception=True)
            lines = payload.validated_data["lines"]
            name = payload.validated_data.get("source") or request.query_params.get("source")
        if len(lines) > max_lines:
            raise PayloadTooLarge(
                f"{len(lines)} lines exceed EVENTS_MAX_LINES={max_lines}", detail={"max_lines": max_lines}
            )
        if not lines:
            raise ValidationError("no lines in the request")
        source = f"http:{name or request.user.get_username()}"[:255]
        summary = services.events_submit(lines=lines, source=source, actor=request.user)
        return Response({"source": source, **summary.as_dict()})


class IngestSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = IngestSource
        fields = [
            "id",
            "name",
            "kind",
            "lines_read",
            "lines_stored",
            "duplicates",
            "quarantined",
            "position",
            "lag",
            "rate_per_s",
            "last_event_time",
            "last_batch_at",
            "last_error",
            "last_error_at",
        ]


class IngestSourceListApi(generics.ListAPIView):
    """Ingestion sources with their status: lines, lag, rate, last event time, last error."""

    serializer_class = IngestSourceSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=[
            text_param("kind", "file, stdin, redis, kafka or http"),
            text_param("name", "substring of the name"),
            OpenApiParameter("failing", bool, description="only sources with a last error"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        q = QueryParams(self.request)
        return selectors.ingest_source_list(filters={"kind": q.text("kind"), "name": q.text("name"),
                                                     "failing": q.bool("failing")})


class IngestSourceDetailApi(generics.RetrieveAPIView):
    """One ingestion source's status."""

    serializer_class = IngestSourceSerializer

    def get_object(self) -> IngestSource:
        return get_object_or_404(selectors.ingest_source_list(), id=self.kwargs["source_id"])


class QuarantinedLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuarantinedLine
        fields = ["id", "source", "position", "raw", "reason", "reason_code", "created_at"]


_QUARANTINE_PARAMS = [
    text_param("source", "exact source name", max_length=255),
    text_param("reason_code", "e.g. rating_out_of_range, bad_timestamp"),
    time_param("since"),
    time_param("until"),
    text_param("q", "text in the line or the reason"),
]


def _quarantine_filters(request) -> dict:
    q = QueryParams(request)  # month 13 or an offset of +99:00 is a 400 naming the parameter
    return {"source": q.text("source", max_length=255), "reason_code": q.text("reason_code"),
            "since": q.time("since"), "until": q.time("until"), "q": q.text("q")}


class QuarantineListApi(generics.ListAPIView):
    """Quarantined lines, newest first, with their reason and position."""

    serializer_class = QuarantinedLineSerializer
    filter_backends: list = []

    @extend_schema(parameters=_QUARANTINE_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.quarantined_line_list(filters=_quarantine_filters(self.request))


class QuarantineCountsApi(APIView):
    """How many lines were quarantined, by reason code (same filters as the list)."""

    @extend_schema(
        parameters=_QUARANTINE_PARAMS,
        responses=inline_serializer(
            "QuarantineCounts",
            {
                "total": serializers.IntegerField(),
                "reasons": inline_serializer(
                    "QuarantineReasonCount",
                    {
                        "reason_code": serializers.CharField(),
                        "count": serializers.IntegerField(),
                        "example": serializers.CharField(),
                        "latest": serializers.DateTimeField(),
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request) -> Response:
        rows = selectors.quarantine_counts(filters=_quarantine_filters(request))
        return Response({"total": sum(row["count"] for row in rows), "reasons": rows})
