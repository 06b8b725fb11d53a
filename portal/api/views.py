"""REST API of the portal shell: tokens, the current user, the activity log, the review inbox."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import selectors, services
from portal.api.pagination import StrictFilterBackend, StrictOrderingFilter
from portal.api.schema import ApiErrorSerializer
from portal.api.serializers import ActivityLogEntrySerializer, ReviewRequestSerializer
from portal.filters import ActivityLogFilter, ReviewRequestFilter
from portal.models import ApiToken
from portal.permissions import ROLES, HasRole, IsUsherUser, user_roles


class TokenPermission(IsUsherUser):
    """Creating a token is open to a caller with a username and password (the view signs them in);
    everything else needs a signed-in user with a role, as ``IsUsherUser``."""

    def has_permission(self, request, view) -> bool:
        if request.method == "POST" and not request.user.is_authenticated:
            return True  # the view answers 401 without credentials, 429 while locked out
        return super().has_permission(request, view)


class TokenApi(APIView):
    """Create (or rotate) and revoke an API token.

    ``POST`` with ``{"username", "password"}`` signs in like the portal's login page (the same
    lockout after repeated failures) and answers that user's new token; ``POST`` with no body from a
    signed-in session (or token) answers a new token of the signed-in user. Every role may hold a
    token, read-only viewers included: it is how scripts read the API. The key is in the creation's
    answer only: it is stored hashed and cannot be read again; the previous key stops working.
    """

    permission_classes = [TokenPermission]
    write_roles = ROLES  # a viewer manages their own token too

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, required=False, trim_whitespace=False)
        password = serializers.CharField(max_length=4096, required=False, trim_whitespace=False,
                                         style={"input_type": "password"})

        def validate(self, attrs: dict) -> dict:
            given = [name for name in ("username", "password") if name in attrs]
            if len(given) == 1:
                missing = "password" if given == ["username"] else "username"
                raise serializers.ValidationError({missing: ["Send both username and password."]})
            return attrs

    @extend_schema(
        request=InputSerializer,
        responses={201: inline_serializer("TokenOut", {"token": serializers.CharField()}),
                   401: ApiErrorSerializer, 429: ApiErrorSerializer},
        summary="Create or rotate an API token: with a username and password, or for the signed-in user",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data:
            _, key = services.api_token_create_with_password(request=request._request, **data.validated_data)
        elif request.user.is_authenticated:
            # The key is answered once; only its digest is stored.
            _, key = services.api_token_create(user=request.user)
        else:
            raise exceptions.NotAuthenticated("Send a username and password, or sign in.")
        return Response({"token": key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None}, summary="Revoke my API token")
    def delete(self, request: Request) -> Response:
        services.api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """Who am I, and which roles do I hold."""

    permission_classes = [IsUsherUser]

    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(),
        "roles": serializers.ListField(child=serializers.CharField()),
        "has_token": serializers.BooleanField(),
    }))
    def get(self, request: Request) -> Response:
        return Response({
            "username": request.user.get_username(),
            "roles": sorted(user_roles(request.user)),
            "has_token": ApiToken.objects.filter(user=request.user).exists(),
        })


class ActivityLogListApi(generics.ListAPIView):
    """The activity log, newest first; filter by actor, action (prefix), target and time.

    Read only: the log is written by the services that change state, never through the API.
    """

    serializer_class = ActivityLogEntrySerializer
    filter_backends = [StrictFilterBackend, StrictOrderingFilter]
    filterset_class = ActivityLogFilter
    ordering_fields = ["seq", "created_at"]
    ordering = ["-seq"]

    def get_queryset(self):
        return selectors.activity_log_list()


class ReviewListApi(generics.ListAPIView):
    """Every review request; filter by status, kind, assigned role, target."""

    serializer_class = ReviewRequestSerializer
    filter_backends = [StrictFilterBackend, StrictOrderingFilter]
    filterset_class = ReviewRequestFilter
    ordering_fields = ["created_at", "due_at", "decided_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.review_request_list()


class ReviewInboxApi(generics.ListAPIView):
    """The pending reviews the signed-in user may decide, soonest due first."""

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
    """Approve, reject or request changes. The requester cannot decide a four-eyes review.

    The permission class keeps read-only viewers out; which working role may decide a given
    review (its kind's role, or a named person) is the service's call.
    """

    permission_classes = [IsUsherUser, HasRole("data_scientist", "operator", "reviewer", "admin")]

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "reject", "request_changes"])
        comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: ReviewRequestSerializer},
                   summary="Decide a review (approve, reject, request changes)")
    def post(self, request: Request, review_id: int) -> Response:
        review = get_object_or_404(selectors.review_request_list(), id=review_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_request_decide(review=review, actor=request.user, **data.validated_data)
        return Response(ReviewRequestSerializer(review).data)
