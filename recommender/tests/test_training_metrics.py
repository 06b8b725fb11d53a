"""Metric functions against values computed by hand, and the splits."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from portal.errors import ValidationError
from recommender.training import evaluation as ev

REC = ["a", "b", "c", "d", "e"]
REL = {"b", "e", "z"}


def test_rmse_and_mae():
    errors = [1.0, -2.0, 0.0, 1.0]
    assert ev.rmse(errors) == pytest.approx(math.sqrt((1 + 4 + 0 + 1) / 4))
    assert ev.mae(errors) == pytest.approx(1.0)


def test_ranking_metrics_by_hand():
    # hits at ranks 2 and 5 of 5; 3 relevant items
    assert ev.precision_at_k(REC, REL, 5) == pytest.approx(2 / 5)
    assert ev.recall_at_k(REC, REL, 5) == pytest.approx(2 / 3)
    assert ev.hit_rate_at_k(REC, REL, 5) == 1.0
    assert ev.hit_rate_at_k(REC, REL, 1) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ev.ndcg_at_k(REC, REL, 5) == pytest.approx(dcg / idcg)
    # AP = (1/2 + 2/5) / min(3, 5)
    assert ev.average_precision_at_k(REC, REL, 5) == pytest.approx((0.5 + 0.4) / 3)
    # k shorter than the list: only the first two count; precision divides by k
    assert ev.precision_at_k(REC, REL, 2) == pytest.approx(1 / 2)
    assert ev.ndcg_at_k(["b"], {"b"}, 20) == pytest.approx(1.0)
    assert ev.average_precision_at_k(["x", "b"], {"b"}, 20) == pytest.approx(0.5)


def test_beyond_accuracy_by_hand():
    lists = [["a", "b"], ["a", "c"]]
    assert ev.catalog_coverage(lists, 4) == pytest.approx(3 / 4)
    # cosine(A,B) = 1/2 → personalization 1 - 1/2
    assert ev.personalization(lists) == pytest.approx(0.5)
    assert ev.personalization([["a", "b"], ["a", "b"]]) == pytest.approx(0.0)
    assert ev.personalization([["a"], ["b"], ["c"]]) == pytest.approx(1.0)
    share = {"a": 0.5, "b": 0.25, "c": 0.125}
    assert ev.novelty(lists, share) == pytest.approx((1 + 2 + 1 + 3) / 4)
    assert ev.average_popularity(lists, {"a": 10, "b": 4, "c": 2}) == pytest.approx((10 + 4 + 10 + 2) / 4)


def test_gini_by_hand():
    assert ev.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert ev.gini([0, 0, 0, 4]) == pytest.approx(0.75)  # (n-1)/n for one item taking all
    # x = [1, 2, 3]: Σ(2i-n-1)x_i = (-2)(1)+0(2)+2(3) = 4; / (3 * 6)
    assert ev.gini([3, 1, 2]) == pytest.approx(4 / 18)
    assert ev.gini([]) == 0.0


def test_ranking_metrics_average_over_users_with_relevant_items():
    lists = {1: ["a", "b"], 2: ["c"], 3: ["d"]}
    relevant = {1: {"a"}, 2: {"x"}}
    m = ev.ranking_metrics(lists, relevant, 2)
    assert m["ranking_users"] == 2
    assert m["precision_at_2"] == pytest.approx((0.5 + 0) / 2)
    assert m["hit_rate_at_2"] == pytest.approx(0.5)


def frame(n_users=4, per_user=5):
    rows = [(u, f"m{i}", 1 + (u + i) % 5, 1000 * u + i) for u in range(n_users) for i in range(per_user)]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_random_split_is_seeded():
    data = frame()
    a = ev.split_frame(data, {"kind": "random", "test_fraction": 0.25, "seed": 7})[0]
    b = ev.split_frame(data, {"kind": "random", "test_fraction": 0.25, "seed": 7})[0]
    c = ev.split_frame(data, {"kind": "random", "test_fraction": 0.25, "seed": 8})[0]
    assert len(a[1]) == 5 and a[1].equals(b[1]) and not a[1].equals(c[1])


def test_temporal_split_puts_the_newest_in_test():
    train, test = ev.split_frame(frame(), {"kind": "temporal", "test_fraction": 0.2})[0]
    assert train["timestamp"].max() < test["timestamp"].min()
    assert len(test) == 4


def test_leave_last_n_per_viewer():
    train, test = ev.split_frame(frame(), {"kind": "leave_last_n", "n": 2})[0]
    assert test.groupby("user_id").size().to_dict() == {0: 2, 1: 2, 2: 2, 3: 2}
    assert set(test["movie_id"]) == {"m3", "m4"}


def test_kfold_covers_every_rating_once():
    pairs = ev.split_frame(frame(), {"kind": "kfold", "folds": 5, "seed": 0})
    assert len(pairs) == 5
    assert sorted(i for _, test in pairs for i in test.index) == list(range(20))


@pytest.mark.parametrize("spec,match", [
    ({"kind": "bootstrap"}, "unknown split kind"),
    ({"kind": "random", "test_fraction": 1.5}, "test_fraction"),
    ({"kind": "leave_last_n", "n": 0}, "n must be"),
    ({"kind": "kfold", "folds": 1}, "folds must be"),
    ({"kind": "temporal", "seed": 3}, "unknown option"),
])
def test_bad_splits(spec, match):
    with pytest.raises(ValidationError, match=match):
        ev.split_validate(spec, seed=0)
