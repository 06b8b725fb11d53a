"""Writes of the portal shell: the activity log and the review inbox."""

from portal.services.activity import activity_log_record, activity_log_verify  # noqa: F401
from portal.services.reviews import (  # noqa: F401
    review_request_cancel,
    review_request_create,
    review_request_decide,
)
