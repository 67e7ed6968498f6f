from collections.abc import Callable

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
    that machine, without saying whose they are; details["suggestions"], when
    given, what to book instead ({"same_machine": [{"start", "end"}…],
    "other_machines": [{"machine", "name", "start", "end"}…]}).

    `suggestions` may be a function that computes them: it then runs when they
    are first read (the API's answer), after the booking's transaction is over,
    and never for callers that don't read them (a series reports conflicts only)."""

    status_code = 409
    code = "booking_conflict"

    def __init__(
        self,
        message: str,
        conflicts: list[dict],
        suggestions: dict | Callable[[], dict] | None = None,
    ):
        self._suggestions = suggestions
        super().__init__(message, details={"conflicts": conflicts})
        self.conflicts = conflicts

    @property
    def suggestions(self) -> dict | None:
        if callable(self._suggestions):
            self._suggestions = self._suggestions()
        return self._suggestions

    @property
    def details(self) -> dict:
        if self.suggestions is None:
            return self._details
        return {**self._details, "suggestions": self.suggestions}

    @details.setter
    def details(self, value: dict) -> None:
        self._details = value


class SeriesNotBookable(DomainError):
    """Some occurrences of a series cannot be booked; details["occurrences"]
    reports each one (booked or not, and why). 409 when any clashes, else 400."""

    code = "series_not_bookable"

    def __init__(self, message: str, occurrences: list[dict]):
        super().__init__(message, details={"occurrences": occurrences})
        self.status_code = 409 if any(o.get("conflicts") for o in occurrences) else 400
