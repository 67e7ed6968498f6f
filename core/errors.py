"""Domain errors. Services raise these; the API maps each to one HTTP status
(core/api/errors.py) and the pages show their message.

Invalid field values are plain `django.core.exceptions.ValidationError`s, the
same that `Model.full_clean()` raises, so a rule is written once."""


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class Forbidden(DomainError):
    """The user sees the object but may not do this to it."""

    status_code = 403
    code = "permission_denied"


class NotVisible(DomainError):
    """Unknown, or not the user's to see: both answer the same."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Gone(DomainError):
    status_code = 410
    code = "gone"


class Unprocessable(DomainError):
    status_code = 422
    code = "unprocessable"
