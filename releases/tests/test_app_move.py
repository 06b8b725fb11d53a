"""Releases moved from the recommender app to its own: the tables stay, the content types (and so
the permissions attached to them) and the review requests that name its objects follow."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from portal.models import ReviewRequest
from releases.models import PromotionRequest, Rollout

pytestmark = pytest.mark.django_db
migration = importlib.import_module("releases.migrations.0002_content_types_and_review_targets")


def test_the_models_keep_their_tables():
    assert PromotionRequest._meta.db_table == "recommender_promotionrequest"
    assert Rollout._meta.db_table == "recommender_rollout"
    assert "recommender_promotionrequest" in connection.introspection.table_names()


def test_old_content_types_keep_their_permissions_and_review_targets_follow():
    # A database from before the move: its content type (with a permission on it) says recommender; the
    # one post_migrate made for the new name has nothing on it.
    ContentType.objects.filter(app_label="releases", model="rollout").delete()
    old = ContentType.objects.create(app_label="recommender", model="rollout")
    permission = Permission.objects.create(content_type=old, codename="legacy_view_rollout", name="legacy")
    ContentType.objects.get_or_create(app_label="releases", model="rollout")
    review = ReviewRequest.objects.create(kind="model_promotion", title="t", target_type="recommender.promotionrequest",
                                          target_id="1", requester_label="ds", assigned_role="reviewer")

    migration.forwards(apps, None)

    moved = ContentType.objects.get(pk=old.pk)
    assert (moved.app_label, moved.model) == ("releases", "rollout")
    assert ContentType.objects.filter(app_label="releases", model="rollout").count() == 1
    assert Permission.objects.get(pk=permission.pk).content_type_id == old.pk
    review.refresh_from_db()
    assert review.target_type == "releases.promotionrequest"

    migration.backwards(apps, None)
    assert ContentType.objects.get(pk=old.pk).app_label == "recommender"
    review.refresh_from_db()
    assert review.target_type == "recommender.promotionrequest"
