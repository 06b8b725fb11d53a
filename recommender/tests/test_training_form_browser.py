"""The training form in a real browser (Playwright + Debian's chromium against the live server): a
bad hyperparameter comes back beside its field, with the algorithm still ticked and the text still
there, and no run queued."""

from __future__ import annotations

import pytest

from recommender.models import TrainingRun
from recommender.tests.factories_training import synthetic_ratings
from recommender.training.snapshots import snapshot_create

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]


def test_a_bad_hyperparameter_keeps_the_form_as_typed(page, browser_login, users):
    synthetic_ratings(n_users=30, n_items=25, density=0.4)
    snapshot = snapshot_create(actor=None, system="test", name="browser")
    browser_login(users["data_scientist"])
    page.goto("/portal/training/runs/")
    form = page.locator('[data-testid="train-form"]')
    form.locator("select[name=snapshot]").select_option(str(snapshot.pk))
    form.locator("input[name=algorithm][value=svd]").check()
    form.locator("textarea[name=hyperparameters]").fill("n_factors=abc")
    form.locator("input[name=seed]").fill("7")
    form.get_by_role("button", name="Queue runs").click()
    page.wait_for_load_state("load")

    form = page.locator('[data-testid="train-form"]')
    beside = form.locator('[data-field="hyperparameters"]')
    assert "n_factors: must be a whole number" in beside.inner_text()
    assert "n_factors" in form.locator('[data-testid="form-errors"]').inner_text()
    assert form.locator("input[name=algorithm][value=svd]").is_checked()
    assert not form.locator("input[name=algorithm][value=nmf]").is_checked()
    assert form.locator("textarea[name=hyperparameters]").input_value() == "n_factors=abc"
    assert form.locator("input[name=seed]").input_value() == "7"
    assert form.locator("select[name=snapshot]").input_value() == str(snapshot.pk)
    assert not TrainingRun.objects.exists()
    assert page.external_requests == []
