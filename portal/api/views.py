"""REST API of the portal shell: tokens, the current user, the activity log, the review inbox."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.serializers import ActivityLogEntrySerializer, ReviewRequestSerializer
from portal.permissions import user_roles


class TokenApi(APIView):
    """Create (or rotate) and revoke the API token of the signed-in user."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={201: inline_serializer("TokenOut", {"token": serializers.CharField()})},
    )
    def post(self, request) -> Response:
        with transaction.atomic():
            Token.objects.filter(user=request.user).delete()
            token = Token.objects.create(user=request.user)
            services.activity_log_record(actor=request.user, action="api_token.created",
                                         target=("auth.user", request.user.pk, request.user.get_username()))
        return Response({"token": token.key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request) -> Response:
        deleted, _ = Token.objects.filter(user=request.user).delete()
        if deleted:
            services.activity_log_record(actor=request.user, action="api_token.revoked",
                                         target=("auth.user", request.user.pk, request.user.get_username()))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """Who am I, and which roles do I hold."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(), "roles": serializers.ListField(child=serializers.CharField()),
    }))
    def get(self, request) -> Response:
        return Response({"username": request.user.get_username(), "roles": sorted(user_roles(request.user))})


class ActivityLogListApi(generics.ListAPIView):
    """The activity log, newest first; filter by actor, action (prefix), target and time."""

    serializer_class = ActivityLogEntrySerializer
    filter_backends: list = []

    @extend_schema(parameters=[
        OpenApiParameter("actor", str), OpenApiParameter("action", str),
        OpenApiParameter("target_type", str), OpenApiParameter("target_id", str),
        OpenApiParameter("since", str, description="ISO-8601 time"),
        OpenApiParameter("until", str, description="ISO-8601 time"),
    ])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        from django.utils.dateparse import parse_datetime

        params = self.request.query_params
        filters = {k: params.get(k) for k in ("actor", "action", "target_type", "target_id")}
        for key in ("since", "until"):
            if params.get(key):
                value = parse_datetime(params[key])
                if value is None:
                    from portal.errors import ValidationError

                    raise ValidationError(f"'{key}' is not an ISO-8601 time: {params[key]!r}")
                filters[key] = value
        return selectors.activity_log_list(filters=filters)


class ReviewListApi(generics.ListAPIView):
    """Every review request; filter by status, kind, assigned role."""

    serializer_class = ReviewRequestSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("status", str), OpenApiParameter("kind", str),
                               OpenApiParameter("assigned_role", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return selectors.review_request_list(
            filters={k: params.get(k) for k in ("status", "kind", "assigned_role")}
        )


class ReviewInboxApi(generics.ListAPIView):
    """The pending reviews the signed-in user may decide."""

    serializer_class = ReviewRequestSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.review_request_inbox(user=self.request.user)


class ReviewDetailApi(generics.RetrieveAPIView):
    """One review request with its evidence."""

    serializer_class = ReviewRequestSerializer
    lookup_url_kwarg = "review_id"

    def get_queryset(self):
        return selectors.review_request_list()


class ReviewDecideApi(APIView):
    """Approve, reject or request changes. The requester cannot decide a four-eyes review."""

    write_roles = ("viewer", "data_scientist", "operator", "reviewer", "admin")  # the service decides

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "reject", "request_changes"])
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: ReviewRequestSerializer})
    def post(self, request, review_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = get_object_or_404(selectors.review_request_list(), id=review_id)
        review = services.review_request_decide(review=review, actor=request.user, **data.validated_data)
        return Response(ReviewRequestSerializer(review).data)
