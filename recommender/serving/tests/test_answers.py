"""recommend_answer, the one service behind /recommend, the JSON API and the provenance page: the
routed model's answer or the fallback, the explanations, and the prediction-log record."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from recommender.models import PredictionLog
from recommender.serving.answers import InvalidViewerId, parse_viewer_id, recommend_answer
from recommender.serving.runtime import get_runtime
from recommender.serving.tests.conftest import ITEM_IDS, deploy, make_version
from recommender.tests.factories_training import MovieFactory

pytestmark = pytest.mark.django_db


def test_a_well_formed_request_is_answered_and_logged_once_for_its_door():
    version = make_version("v1")
    deploy(version)
    served = recommend_answer(viewer_id=7, k=5, endpoint="plain", client="10.0.0.9", started=time.perf_counter())
    answer = served.answer
    assert answer.version.version_id == version.pk and len(answer.items) == 5 and answer.fallback_reason == ""
    assert served.items is None and served.latency_ms >= 0
    get_runtime().predlog.flush()
    row = PredictionLog.objects.get(request_id=answer.request_id)
    assert (row.endpoint, row.client, row.viewer_id, row.status) == ("plain", "10.0.0.9", 7, 200)
    assert list(row.items) == answer.items and row.model_version_id == version.pk


def test_explained_items_follow_the_answer_with_titles_and_scores():
    MovieFactory(id=ITEM_IDS[0], title="Zero")
    deploy(make_version("v1"))
    served = recommend_answer(
        viewer_id=7, k=len(ITEM_IDS), endpoint="api", client="user:x", started=time.perf_counter(), explain=True
    )
    assert [i["movie_id"] for i in served.items] == served.answer.items
    assert [i["rank"] for i in served.items] == list(range(1, len(ITEM_IDS) + 1))
    assert [i["score"] for i in served.items] == served.answer.scores
    zero = next(i for i in served.items if i["movie_id"] == ITEM_IDS[0])
    assert zero["title"] == "Zero" and zero["explanation"]["text"]


def test_a_failure_of_the_serving_code_is_answered_by_the_fallback_and_logged():
    MovieFactory(id=ITEM_IDS[0], title="Zero")
    deploy(make_version("v1"))
    runtime = get_runtime()
    runtime.ensure_loaded()
    runtime.state = None  # a bug in the serving code: recommend() fails before any model is asked
    served = recommend_answer(
        viewer_id=7, k=5, endpoint="api", client="user:x", started=time.perf_counter(), explain=True
    )
    assert served.answer.fallback_reason == "internal_error" and "AttributeError" in served.answer.error
    assert served.answer.served_by == "fallback"
    assert served.items and all("Popular and recent" in i["explanation"]["text"] for i in served.items)
    runtime.predlog.flush()
    row = PredictionLog.objects.get(request_id=served.answer.request_id)
    assert row.status == 200 and row.fallback_reason == "internal_error"


def test_the_provenance_page_asks_through_the_same_service_and_falls_back_too(users):
    deploy(make_version("v1"))
    runtime = get_runtime()
    runtime.ensure_loaded()
    runtime.state = None
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/portal/serving/provenance/?try_viewer=7")
    assert response.status_code == 200  # before the one service, the page itself failed here
    assert 'data-testid="answer"' in response.content.decode() and "internal_error" in response.content.decode()
    runtime.predlog.flush()
    assert PredictionLog.objects.get(client="portal:viewer_user").fallback_reason == "internal_error"


@pytest.mark.parametrize("raw", ["abc", "", "1.5", "٣", "99999999999999999999"])
def test_the_one_parser_refuses_what_is_not_a_64_bit_integer(raw):
    with pytest.raises(InvalidViewerId, match="user id"):
        parse_viewer_id(raw)
    assert parse_viewer_id("-9223372036854775808") == -(2**63)
