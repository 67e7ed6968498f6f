"""REST API for utilisation analytics (booking/analytics.py defines every metric):

- GET /api/v1/platforms/{id}/utilisation/?start=…&end=…&group_by=…&machine=…
  &machine_type=…&organization=…
- GET /api/v1/platforms/{id}/utilisation/heatmap/?start=…&end=…&machine=…
  &machine_type=…&organization=… (peak hours: a week × hour table)
- GET /api/v1/labels/{id}/utilisation/?start=…&end=…&group_by=…&platform=…
  &machine=…&machine_type=…

The same table as JSON, CSV or XLSX (`?format=csv|xlsx`, or the Accept header);
errors are always JSON. Filters by a foreign id match nothing, like list filters."""

import csv
import io
from datetime import timedelta

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from openpyxl import Workbook
from rest_framework import generics, serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from booking import analytics
from core.api.fields import BoundedDateField
from core.api.filters import MAX_ID
from equipment.models import Label, Machine, Platform

CSV_MEDIA = "text/csv"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- Renderers: the table as a file ---------------------------------------------------------


def _cell(value):
    return "" if value is None else value


class CSVRenderer(BaseRenderer):
    """The table's rows under a header of its columns (UTF-8, comma-separated)."""

    media_type = CSV_MEDIA
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(data["columns"])
        for row in data["rows"]:
            writer.writerow([_cell(row.get(column)) for column in data["columns"]])
        return out.getvalue().encode(self.charset)


class XLSXRenderer(BaseRenderer):
    """The same table as an Excel workbook: a sheet of rows, a sheet of totals."""

    media_type = XLSX_MEDIA
    format = "xlsx"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = getattr((renderer_context or {}).get("view"), "file_stem", "utilisation")
        sheet.append(data["columns"])
        for row in data["rows"]:
            sheet.append([row.get(column) for column in data["columns"]])
        totals = workbook.create_sheet("totals")
        for name, value in data["totals"].items():
            totals.append([name, value])
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()


# --- Input ----------------------------------------------------------------------------------


class UtilisationQuerySerializer(serializers.Serializer):
    MAX_DAYS = 366
    GROUPS = analytics.GROUPS

    start = BoundedDateField(help_text="First local day of the period (platform's zone).")
    end = BoundedDateField(help_text="Day after the period's last one (excluded).")
    group_by = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=100,
        help_text="Comma-separated: at most one of machine, machine_type, organization, "
        "platform and one of day, week, month; e.g. machine,month. Empty: one row.",
    )
    machine = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    machine_type = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    organization = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def validate_group_by(self, value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in self.GROUPS]
        if unknown:
            raise serializers.ValidationError(
                _("Unknown grouping %(names)s; use %(allowed)s.")
                % {"names": ", ".join(unknown), "allowed": ", ".join(self.GROUPS)}
            )
        entities = [n for n in names if n in analytics.ENTITY_GROUPS]
        units = [n for n in names if n in analytics.TIME_GROUPS]
        if len(entities) > 1 or len(units) > 1 or len(set(names)) != len(names):
            raise serializers.ValidationError(
                _(
                    "Group by at most one of machine, machine type, organization or platform, "
                    "and one of day, week or month."
                )
            )
        return names

    def validate(self, data):
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": [_("The end must be after the start.")]})
        if data["end"] - data["start"] > timedelta(days=self.MAX_DAYS):
            raise serializers.ValidationError(
                {"end": [_("The period spans at most %(n)d days.") % {"n": self.MAX_DAYS}]}
            )
        return data


class HeatmapQuerySerializer(UtilisationQuerySerializer):
    """The period and filters of the platform's table; a heatmap is not grouped."""

    group_by = None


class LabelUtilisationQuerySerializer(UtilisationQuerySerializer):
    """A label's programme view never names SMEs: no organization grouping or filter."""

    GROUPS = tuple(g for g in analytics.GROUPS if g != "organization")
    organization = None
    platform = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    type=str,
    enum=["json", "csv", "xlsx"],
    required=False,
    description="The table as JSON (default), CSV or an Excel workbook; "
    "the Accept header does the same. Errors are JSON.",
)


# --- Output (documentation of the JSON answer) ----------------------------------------------


class MetricsSerializer(serializers.Serializer):
    """booking/analytics.py and the README define each one."""

    available_hours = serializers.FloatField()
    booked_hours = serializers.FloatField()
    used_hours = serializers.FloatField()
    utilisation_booked = serializers.FloatField(allow_null=True)
    utilisation_used = serializers.FloatField(allow_null=True)
    share_of_booked_hours = serializers.FloatField(allow_null=True)
    bookings = serializers.IntegerField()
    no_shows = serializers.IntegerField()
    no_show_rate = serializers.FloatField(allow_null=True)
    cancellations = serializers.IntegerField()
    late_cancellations = serializers.IntegerField()
    late_cancellation_rate = serializers.FloatField(allow_null=True)
    lead_time_avg_hours = serializers.FloatField(allow_null=True)
    lead_time_p50_hours = serializers.FloatField(
        allow_null=True, help_text="Median lead time (interpolated, as percentile_cont)."
    )
    lead_time_p90_hours = serializers.FloatField(
        allow_null=True, help_text="90th percentile of the lead time (interpolated)."
    )
    lead_time_under_1d = serializers.IntegerField()
    lead_time_1d_to_7d = serializers.IntegerField()
    lead_time_7d_to_30d = serializers.IntegerField()
    lead_time_30d_or_more = serializers.IntegerField()
    refused_conflicts = serializers.IntegerField()
    refused_rules = serializers.IntegerField()
    rejected_by_manager = serializers.IntegerField()
    refused_hours = serializers.FloatField()
    revenue = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        allow_null=True,
        help_text="From billing's issued invoices and credit notes (README); null without billing.",
    )


class RowSerializer(MetricsSerializer):
    """A row: its group (the columns of the grouping asked for), then the metrics."""

    machine = serializers.IntegerField(required=False)
    machine_name = serializers.CharField(required=False)
    machine_type = serializers.IntegerField(required=False)
    machine_type_name = serializers.CharField(required=False)
    organization = serializers.IntegerField(required=False, allow_null=True)
    organization_name = serializers.CharField(required=False, allow_blank=True)
    platform = serializers.IntegerField(required=False)
    platform_name = serializers.CharField(required=False)
    period_start = serializers.DateField(required=False, help_text="First local day.")
    period_end = serializers.DateField(required=False, help_text="Day after the last one.")


class TableSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.ListField(child=serializers.CharField())
    columns = serializers.ListField(
        child=serializers.CharField(), help_text="The rows' keys, in order (the CSV header)."
    )
    rows = RowSerializer(many=True)
    totals = MetricsSerializer(help_text="The metrics over every row.")


class PlatformUtilisationSerializer(TableSerializer):
    platform = serializers.IntegerField()
    timezone = serializers.CharField(help_text="Local days and periods are in this zone.")


class LabelUtilisationSerializer(TableSerializer):
    label = serializers.IntegerField()
    platforms = serializers.ListField(
        child=serializers.IntegerField(), help_text="The label's platforms aggregated here."
    )


class HeatmapFiguresSerializer(serializers.Serializer):
    booked_hours = serializers.FloatField()
    available_hours = serializers.FloatField()
    occupancy = serializers.FloatField(
        allow_null=True, help_text="booked / available hours; null without available hours."
    )


class HeatmapCellSerializer(HeatmapFiguresSerializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 is Monday.")
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text="Local hour.")


class PlatformHeatmapSerializer(serializers.Serializer):
    platform = serializers.IntegerField()
    timezone = serializers.CharField(help_text="Weekdays and hours are local to this zone.")
    start = serializers.DateField()
    end = serializers.DateField()
    columns = serializers.ListField(
        child=serializers.CharField(), help_text="The rows' keys, in order (the CSV header)."
    )
    rows = HeatmapCellSerializer(
        many=True, help_text="168 cells: Monday 00:00 first, then by weekday and hour."
    )
    totals = HeatmapFiguresSerializer(help_text="The same figures over the whole week.")


def _responses(json_serializer) -> dict:
    return {
        (200, "application/json"): json_serializer,
        (200, CSV_MEDIA): OpenApiTypes.STR,
        (200, XLSX_MEDIA): OpenApiTypes.BINARY,
    }


# --- Views ----------------------------------------------------------------------------------


class _UtilisationView(generics.GenericAPIView):
    """A table about one object visible to the caller (404 otherwise)."""

    filter_backends = []
    pagination_class = None
    renderer_classes = [JSONRenderer, CSVRenderer, XLSXRenderer]
    query_serializer = UtilisationQuerySerializer
    file_stem = "utilisation"

    def finalize_response(self, request, response, *args, **kwargs):
        data = getattr(response, "data", None)
        if not (isinstance(data, dict) and "columns" in data):
            # Errors (and OPTIONS' description) are JSON, whatever was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        renderer = getattr(request, "accepted_renderer", None)
        if response.status_code == 200 and isinstance(renderer, CSVRenderer | XLSXRenderer):
            name = f"{self.file_stem}-{self.kwargs.get('pk')}.{renderer.format}"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ?format= with a 404 before authenticating: here
        # it is a 400 naming the parameter, after the 401 and 404 it may deserve.
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            self.unknown_format = True
            return JSONRenderer(), JSONRenderer.media_type

    def query(self) -> dict:
        if getattr(self, "unknown_format", False):
            raise serializers.ValidationError({"format": [_("Use json, csv or xlsx.")]})
        query = self.query_serializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @staticmethod
    def body(table: analytics.Table, data: dict) -> dict:
        return {
            "start": data["start"],
            "end": data["end"],
            "group_by": table.group_by,
            "columns": table.columns,
            "rows": table.rows,
            "totals": table.totals,
        }


class PlatformUtilisationView(_UtilisationView):
    queryset = Platform.objects.all()  # narrowed to what the caller sees

    def get_queryset(self):
        return Platform.objects.visible_to(self.request.user)

    @extend_schema(
        operation_id="platforms_utilisation",
        parameters=[UtilisationQuerySerializer, FORMAT_PARAMETER],
        responses=_responses(PlatformUtilisationSerializer),
    )
    def get(self, request, *args, **kwargs):
        """Utilisation of a platform's machines over local days [start, end) (at most
        366), grouped as asked. Platform staff see every SME's bookings; an SME
        administrator sees only its own organizations'. 403 for other people of
        the platform."""
        platform, machines, organizations, data = self.scope()
        table = analytics.utilisation(
            platforms=[platform],
            machines=machines,
            start=data["start"],
            end=data["end"],
            group_by=data["group_by"],
            organizations=organizations,
            now=timezone.now(),
        )
        body = {"platform": platform.pk, "timezone": platform.timezone, **self.body(table, data)}
        return Response(body)

    def scope(self):
        """The platform, the machines and organizations whose usage the caller may
        see there (narrowed by the filters), and the validated query."""
        platform = self.get_object()
        audience = analytics.platform_audience(self.request.user, platform)
        data = self.query()
        machines, organizations = audience.narrowed(
            machine=data.get("machine"),
            machine_type=data.get("machine_type"),
            organization=data.get("organization"),
        )
        return platform, machines, organizations, data


class PlatformHeatmapView(PlatformUtilisationView):
    query_serializer = HeatmapQuerySerializer
    file_stem = "heatmap"

    @extend_schema(
        operation_id="platforms_utilisation_heatmap",
        parameters=[HeatmapQuerySerializer, FORMAT_PARAMETER],
        responses=_responses(PlatformHeatmapSerializer),
    )
    def get(self, request, *args, **kwargs):
        """Peak hours: a week × local hour heatmap of a platform's machines over local
        days [start, end) (at most 366): in each of the 168 cells, the booked and
        available hours of every such hour of the period, and occupancy. Same
        filters and audience as the utilisation table."""
        platform, machines, organizations, data = self.scope()
        heatmap = analytics.peak_hours(
            platform=platform,
            machines=machines,
            start=data["start"],
            end=data["end"],
            organizations=organizations,
        )
        return Response(
            {
                "platform": platform.pk,
                "timezone": platform.timezone,
                "start": data["start"],
                "end": data["end"],
                "columns": heatmap.columns,
                "rows": heatmap.rows,
                "totals": heatmap.totals,
            }
        )


class LabelUtilisationView(_UtilisationView):
    queryset = Label.objects.all()
    query_serializer = LabelUtilisationQuerySerializer

    @extend_schema(
        operation_id="labels_utilisation",
        parameters=[LabelUtilisationQuerySerializer, FORMAT_PARAMETER],
        responses=_responses(LabelUtilisationSerializer),
    )
    def get(self, request, *args, **kwargs):
        """A label programme's view: the utilisation of every platform carrying the
        label, aggregated, without naming SMEs (no grouping or filter by
        organization). For managers of any of the label's platforms, and superusers."""
        label = self.get_object()
        platforms = analytics.label_platforms(request.user, label)
        data = self.query()
        if "platform" in data:
            platforms = [p for p in platforms if p.pk == data["platform"]]
        machines = Machine.objects.filter(platform__in=[p.pk for p in platforms])
        table = analytics.utilisation(
            platforms=platforms,
            machines=analytics.narrow_machines(
                machines, machine=data.get("machine"), machine_type=data.get("machine_type")
            ),
            start=data["start"],
            end=data["end"],
            group_by=data["group_by"],
            now=timezone.now(),
        )
        body = {"label": label.pk, "platforms": [p.pk for p in platforms], **self.body(table, data)}
        return Response(body)
