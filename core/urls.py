from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from billing import api as billing_api
from billing import files_api as billing_files_api
from billing import webhooks as billing_webhooks
from booking import analytics_api, availability_api, feeds_api, preferences_api
from booking import api as booking_api
from core.api import views as core_api
from core.api.errors import api_not_found
from equipment import api as equipment_api

router = DefaultRouter()
router.register("me/tokens", core_api.ApiTokenViewSet, basename="apitoken")
router.register("organizations", core_api.OrganizationViewSet, basename="organization")
router.register("memberships", core_api.MembershipViewSet, basename="membership")
router.register("invitations", core_api.InvitationViewSet, basename="invitation")
router.register("labels", equipment_api.LabelViewSet, basename="label")
router.register("machine-types", equipment_api.MachineTypeViewSet, basename="machinetype")
router.register("platforms", equipment_api.PlatformViewSet, basename="platform")
router.register(
    "platform-memberships", equipment_api.PlatformMembershipViewSet, basename="platformmembership"
)
router.register("machines", equipment_api.MachineViewSet, basename="machine")
router.register("opening-hours", equipment_api.OpeningHoursViewSet, basename="openinghours")
router.register("closures", equipment_api.ClosureViewSet, basename="closure")
router.register(
    "maintenance-windows", equipment_api.MaintenanceWindowViewSet, basename="maintenancewindow"
)
router.register("qualifications", equipment_api.QualificationViewSet, basename="qualification")
router.register(
    "user-qualifications", equipment_api.UserQualificationViewSet, basename="userqualification"
)
router.register("bookings", booking_api.BookingViewSet, basename="booking")
router.register("booking-series", booking_api.BookingSeriesViewSet, basename="bookingseries")
router.register("quotas", booking_api.QuotaViewSet, basename="quota")
router.register("feeds", feeds_api.FeedTokenViewSet, basename="feedtoken")
router.register("billing-settings", billing_api.BillingSettingsViewSet, basename="billingsettings")
router.register("tariffs", billing_api.TariffViewSet, basename="tariff")
router.register("consumables", billing_api.ConsumableViewSet, basename="consumable")
router.register("consumable-uses", billing_api.ConsumableUseViewSet, basename="consumableuse")
router.register(
    "funding-programmes", billing_api.FundingProgrammeViewSet, basename="fundingprogramme"
)
router.register("billing-runs", billing_api.BillingRunViewSet, basename="billingrun")
router.register("invoices", billing_api.InvoiceViewSet, basename="invoice")
router.register("invoice-lines", billing_api.InvoiceLineViewSet, basename="invoiceline")
router.register("saved-cards", billing_api.SavedCardViewSet, basename="savedcard")

api_v1 = [
    path("me/", core_api.MeView.as_view(), name="me"),
    path(
        "me/email-preferences/",
        preferences_api.EmailPreferencesView.as_view(),
        name="email-preferences",
    ),
    re_path(  # ids as the router takes them: anything but "/" and "."
        r"^machines/(?P<pk>[^/.]+)/availability/$",
        availability_api.MachineAvailabilityView.as_view(),
        name="machine-availability",
    ),
    re_path(
        r"^platforms/(?P<pk>[^/.]+)/availability-search/$",
        availability_api.AvailabilitySearchView.as_view(),
        name="platform-availability-search",
    ),
    re_path(
        r"^platforms/(?P<pk>[^/.]+)/utilisation/$",
        analytics_api.PlatformUtilisationView.as_view(),
        name="platform-utilisation",
    ),
    re_path(
        r"^platforms/(?P<pk>[^/.]+)/utilisation/heatmap/$",
        analytics_api.PlatformHeatmapView.as_view(),
        name="platform-utilisation-heatmap",
    ),
    re_path(
        r"^labels/(?P<pk>[^/.]+)/utilisation/$",
        analytics_api.LabelUtilisationView.as_view(),
        name="label-utilisation",
    ),
    path(
        "stripe/webhook/",
        billing_webhooks.StripeWebhookView.as_view(),
        name="stripe-webhook",
    ),
    re_path(
        r"^invoices/(?P<pk>[^/.]+)/pdf/$",
        billing_files_api.InvoicePdfView.as_view(),
        name="invoice-pdf",
    ),
    path("invoice-exports/", billing_files_api.InvoiceExportView.as_view(), name="invoice-exports"),
    path("", include(router.urls)),
    path("<path:unknown>", api_not_found),
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switch
    path("admin/", admin.site.urls),
    # A calendar subscription: the secret in the URL is the only credential.
    path("feeds/<str:secret>.ics", feeds_api.calendar_feed, name="calendar-feed"),
    path("", include("frontend.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
