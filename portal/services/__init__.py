"""Writes of the portal shell: the activity log, the review inbox, API tokens, users."""

from portal.services.activity import activity_log_head, activity_log_record, activity_log_verify  # noqa: F401
from portal.services.reviews import (  # noqa: F401
    review_request_cancel,
    review_request_create,
    review_request_decide,
)
from portal.services.tokens import api_token_create, api_token_create_with_password, api_token_revoke  # noqa: F401
from portal.services.users import (  # noqa: F401
    generate_password,
    user_create,
    user_deactivate,
    user_password_reset,
    user_reactivate,
    user_sessions_end,
    user_set_role,
)
