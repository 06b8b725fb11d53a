"""The Django view of ``GET /recommend/<userid>`` (runserver, the test client); gunicorn answers the
same path through ``recommender.serving.wsgi`` with the same function."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from recommender.serving.handlers import recommend_plain


@csrf_exempt
def recommend(request: HttpRequest, rest: str = "") -> HttpResponse:
    # Django's CommonMiddleware has already checked the Host header.
    status, headers, body = recommend_plain(request.META, rest, check_host=False)
    response = HttpResponse(b"" if request.method == "HEAD" else body, status=status)
    for name, value in headers:
        response[name] = value
    return response
