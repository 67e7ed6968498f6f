from core.errors import DomainError


class BookingRejected(DomainError):
    """The booking breaks rules; details["problems"] lists every one of them,
    so that the user can fix everything in one go."""

    status_code = 400
    code = "booking_rejected"

    def __init__(self, problems: list[dict]):
        super().__init__(problems[0]["message"], details={"problems": problems})
        self.problems = problems


class BookingConflict(DomainError):
    """The slot is taken: details["conflicts"] lists the clashing intervals on
    that machine, without saying whose they are."""

    status_code = 409
    code = "booking_conflict"

    def __init__(self, message: str, conflicts: list[dict]):
        super().__init__(message, details={"conflicts": conflicts})
        self.conflicts = conflicts
