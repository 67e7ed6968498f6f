"""What every iCalendar document about a booking agrees on: feeds and email invitations.

A calendar client matches a feed's event and an emailed invitation by UID, and keeps the
copy with the higher SEQUENCE; both must therefore come from here.
"""

from booking.models import Booking

PRODID = "-//fabpool//fabpool booking//EN"

# Never derived from FABPOOL_BASE_URL: moving the site must not duplicate every event.
UID_DOMAIN = "fabpool"

ICAL_STATUS = {
    Booking.Status.PENDING: "TENTATIVE",
    Booking.Status.CONFIRMED: "CONFIRMED",
    Booking.Status.COMPLETED: "CONFIRMED",
    Booking.Status.NO_SHOW: "CONFIRMED",
    Booking.Status.CANCELLED: "CANCELLED",
    Booking.Status.REJECTED: "CANCELLED",
}


def booking_uid(booking_id: int) -> str:
    return f"booking-{booking_id}@{UID_DOMAIN}"
