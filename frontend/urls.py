from django.urls import path

from frontend import booking_views, desk_views, org_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("invitations/accept/", views.accept_invitation, name="accept-invitation"),
    path("platforms/", booking_views.platforms, name="platforms"),
    path("machines/", booking_views.catalogue, name="catalogue"),
    path("machines/<int:pk>/", booking_views.machine, name="machine"),
    path("machines/<int:pk>/events/", booking_views.machine_events, name="machine-events"),
    path("machines/<int:pk>/book/", booking_views.book, name="book"),
    path("find/", booking_views.find, name="find"),
    path("bookings/", booking_views.my_bookings, name="my-bookings"),
    path("bookings/<int:pk>/", booking_views.booking, name="booking"),
    path("bookings/<int:pk>/cancel/", booking_views.cancel, name="booking-cancel"),
    path("bookings/<int:pk>/check-in/", booking_views.check_in, name="booking-check-in"),
    path("bookings/<int:pk>/check-out/", booking_views.check_out, name="booking-check-out"),
    path("series/<int:pk>/", booking_views.series, name="series"),
    path("organizations/<int:pk>/", org_views.members, name="organization"),
    path("organizations/<int:pk>/invite/", org_views.invite, name="organization-invite"),
    path(
        "organizations/<int:pk>/members/<int:member_pk>/role/",
        org_views.change_role,
        name="organization-role",
    ),
    path(
        "organizations/<int:pk>/members/<int:member_pk>/remove/",
        org_views.remove_member,
        name="organization-remove",
    ),
    path(
        "organizations/<int:pk>/invitations/<int:invitation_pk>/revoke/",
        org_views.revoke_invitation,
        name="organization-revoke",
    ),
    path("organizations/<int:pk>/bookings/", org_views.bookings, name="organization-bookings"),
    path("desk/approvals/", desk_views.approvals, name="desk-approvals"),
    path("desk/bookings/<int:pk>/approve/", desk_views.approve, name="desk-approve"),
    path("desk/bookings/<int:pk>/reject/", desk_views.reject, name="desk-reject"),
    path("desk/maintenance/", desk_views.maintenance, name="desk-maintenance"),
]
