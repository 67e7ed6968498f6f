from django.urls import path

from frontend import (
    booking_views,
    dashboard_views,
    desk_views,
    org_views,
    platform_views,
    views,
)

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
    # One platform's desk: /desk/<page>/ opens the first platform the user staffs.
    path("dashboard/", dashboard_views.dashboard_index, name="dashboard-index"),
    path("dashboard/platforms/<int:pk>/", dashboard_views.dashboard, name="dashboard"),
    path("desk/today/", platform_views.today_index, name="desk-today-index"),
    path("desk/platforms/<int:pk>/today/", platform_views.today, name="desk-today"),
    path(
        "desk/platforms/<int:pk>/bookings/<int:booking_pk>/check-in/",
        platform_views.board_check_in,
        name="desk-check-in",
    ),
    path(
        "desk/platforms/<int:pk>/bookings/<int:booking_pk>/check-out/",
        platform_views.board_check_out,
        name="desk-check-out",
    ),
    path(
        "desk/platforms/<int:pk>/bookings/<int:booking_pk>/no-show/",
        platform_views.board_no_show,
        name="desk-no-show",
    ),
    path("desk/machines/", platform_views.machines_index, name="desk-machines-index"),
    path("desk/platforms/<int:pk>/machines/", platform_views.machines, name="desk-machines"),
    path(
        "desk/platforms/<int:pk>/machines/<int:machine_pk>/",
        platform_views.machine_edit,
        name="desk-machine-edit",
    ),
    path(
        "desk/platforms/<int:pk>/machines/<int:machine_pk>/retire/",
        platform_views.machine_retire,
        name="desk-machine-retire",
    ),
    path("desk/hours/", platform_views.hours_index, name="desk-hours-index"),
    path("desk/platforms/<int:pk>/hours/", platform_views.hours, name="desk-hours"),
    path(
        "desk/platforms/<int:pk>/hours/<int:hours_pk>/delete/",
        platform_views.hours_delete,
        name="desk-hours-delete",
    ),
    path(
        "desk/platforms/<int:pk>/closures/<int:closure_pk>/delete/",
        platform_views.closure_delete,
        name="desk-closure-delete",
    ),
    path(
        "desk/qualifications/",
        platform_views.qualifications_index,
        name="desk-qualifications-index",
    ),
    path(
        "desk/platforms/<int:pk>/qualifications/",
        platform_views.qualifications,
        name="desk-qualifications",
    ),
    path(
        "desk/platforms/<int:pk>/grants/<int:grant_pk>/expiry/",
        platform_views.grant_expiry,
        name="desk-grant-expiry",
    ),
    path(
        "desk/platforms/<int:pk>/grants/<int:grant_pk>/revoke/",
        platform_views.grant_revoke,
        name="desk-grant-revoke",
    ),
]
