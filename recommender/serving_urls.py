"""The platform-facing routes (``GET /recommend/<userid>``), outside the portal and the API."""

urlpatterns: list = []
