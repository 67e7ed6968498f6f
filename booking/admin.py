from django.contrib import admin

from booking.models import Booking


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    """Read-only: bookings change through booking.services, which keep the rules,
    the audit trail and the calendar sequence."""

    list_display = ["machine", "organization", "start", "end", "status", "booked_by"]
    list_filter = ["status", "machine__platform"]
    search_fields = ["title", "organization__legal_name", "booked_by__email"]
    date_hierarchy = "start"
    list_select_related = ["machine", "organization", "booked_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
