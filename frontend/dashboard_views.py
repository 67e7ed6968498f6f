"""The utilisation dashboard: booking/analytics.py's tables as charts (Chart.js,
from node_modules) and a table, with the API's CSV and XLSX exports. Who sees
what is the API's rule (analytics.platform_audience): platform staff see every
SME, an SME administrator only its own organizations' usage."""

from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, get_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from booking import analytics
from core.errors import Forbidden
from core.models import Organization
from equipment.models import Machine, MachineType, Platform
from frontend.forms import DayField

# A chart over time draws this many machines at most (those with the most booked
# hours), and this many organizations: more lines or bars cannot be read.
CHART_MACHINES = 8
CHART_ORGANIZATIONS = 10
MAX_DAYS = 366


class DashboardForm(forms.Form):
    first_day = DayField(label=gettext_lazy("From"))
    last_day = DayField(label=gettext_lazy("Until"))
    unit = forms.ChoiceField(
        label=gettext_lazy("Per"),
        choices=[
            ("day", gettext_lazy("day")),
            ("week", gettext_lazy("week")),
            ("month", gettext_lazy("month")),
        ],
        initial="week",
    )
    entity = forms.ChoiceField(label=gettext_lazy("Table by"), required=False)
    machine_type = forms.ModelChoiceField(
        label=gettext_lazy("Machine type"),
        queryset=MachineType.objects.none(),
        required=False,
        empty_label=gettext_lazy("All"),
    )
    machine = forms.ModelChoiceField(
        label=gettext_lazy("Machine"),
        queryset=Machine.objects.none(),
        required=False,
        empty_label=gettext_lazy("All"),
    )
    organization = forms.ModelChoiceField(
        label=gettext_lazy("Organization"),
        queryset=Organization.objects.none(),
        required=False,
        empty_label=gettext_lazy("All"),
    )

    def __init__(self, *args, audience: analytics.Audience, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        machines = audience.machines.order_by("name", "pk")
        self.fields["machine"].queryset = machines
        self.fields["machine_type"].queryset = MachineType.objects.filter(
            pk__in=machines.values("machine_type")
        ).order_by("name")
        entities = [
            ("machine", _("machine")),
            ("machine_type", _("machine type")),
            ("", _("period only")),
        ]
        if audience.names_organizations:
            entities.insert(2, ("organization", _("organization")))
            self.fields["organization"].queryset = organizations
        else:
            del self.fields["organization"]
        self.fields["entity"].choices = entities

    def clean(self):
        data = super().clean()
        first, last = data.get("first_day"), data.get("last_day")
        if first and last:
            if last < first:
                self.add_error("last_day", _("The last day cannot be before the first day."))
            elif (last - first).days >= MAX_DAYS:
                self.add_error("last_day", _("Show at most %(n)d days at once.") % {"n": MAX_DAYS})
        return data

    @staticmethod
    def defaults(today: date) -> dict:
        """The last four whole weeks and this one, by week, by machine."""
        monday = today - timedelta(days=today.weekday())
        return {
            "first_day": monday - timedelta(weeks=4),
            "last_day": monday + timedelta(days=6),
            "unit": "week",
            "entity": "machine",
        }


def _dashboard_platforms(user):
    """Platforms whose dashboard the user may open: where they are staff, or
    where an organization they administer books (the API's audiences)."""
    administered = Organization.objects.administered_by(user)
    return (
        Platform.objects.visible_to(user)
        .filter(
            Q(pk__in=Platform.objects.staffed_by(user).values("pk"))
            | Q(memberships__organization__in=administered)
        )
        .distinct()
        .order_by("name", "pk")
    )


@login_required
def dashboard_index(request):
    platform = _dashboard_platforms(request.user).first()
    if platform is None:
        raise Http404
    return redirect("dashboard", pk=platform.pk)


def _organizations_for(audience, platform):
    """Whom the organization filter offers: every SME booking on the platform for
    its staff, an SME administrator's own organizations for them."""
    if audience.organizations is not None:
        return audience.organizations.order_by("legal_name")
    return Organization.objects.filter(platform_memberships__platform=platform).order_by(
        "legal_name"
    )


@login_required
def dashboard(request, pk):
    platform = get_object_or_404(Platform.objects.visible_to(request.user), pk=pk)
    try:
        audience = analytics.platform_audience(request.user, platform)
    except Forbidden:
        raise Http404 from None
    today = timezone.now().astimezone(platform.tzinfo).date()
    form = DashboardForm(
        request.GET or DashboardForm.defaults(today),
        audience=audience,
        organizations=_organizations_for(audience, platform),
    )
    context = {
        "platform": platform,
        "platforms": _dashboard_platforms(request.user),
        "form": form,
        "staff": audience.organizations is None,
    }
    if not form.is_valid():
        return render(request, "frontend/dashboard.html", context, status=400)
    data = form.cleaned_data
    start, end, unit = data["first_day"], data["last_day"] + timedelta(days=1), data["unit"]
    machines, organizations = audience.narrowed(  # as the API narrows them
        machine=data["machine"],
        machine_type=data["machine_type"],
        organization=data.get("organization"),
    )
    if audience.organizations is not None:  # an SME's view: its audience has joins
        machines, organizations = _read_once(machines), _read_once(organizations)
    now = timezone.now()

    def table(*group_by):
        return analytics.utilisation(
            platforms=[platform],
            machines=machines,
            start=start,
            end=end,
            group_by=group_by,
            organizations=organizations,
            now=now,
        )

    by_machine = table("machine", unit)
    by_organization = table("organization") if audience.names_organizations else None
    entity = data["entity"]
    shown = by_machine if entity == "machine" else table(*([entity] if entity else []), unit)
    query = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": ",".join([*([entity] if entity else []), unit]),
        **({"machine": data["machine"].pk} if data["machine"] else {}),
        **({"machine_type": data["machine_type"].pk} if data["machine_type"] else {}),
        **({"organization": data["organization"].pk} if data.get("organization") else {}),
    }
    api = reverse("v1:platform-utilisation", args=[platform.pk])
    # The heatmap has the table's period and filters; it is not grouped.
    heatmap_query = {k: v for k, v in query.items() if k != "group_by"}
    heatmap_api = reverse("v1:platform-utilisation-heatmap", args=[platform.pk])
    context.update(
        columns=_table_columns(entity),
        # The table reads one machine (type, organization) at a time, period by period.
        rows=_table_body(
            sorted(shown.rows, key=lambda r: (r[f"{entity}_name"] or "", r["period_start"]))
            if entity
            else shown.rows,
            entity,
            unit,
        ),
        totals=by_machine.totals,
        charts=_charts(by_machine, by_organization, unit),
        heatmap=_heatmap(
            analytics.peak_hours(
                platform=platform,
                machines=machines,
                start=start,
                end=end,
                organizations=organizations,
            )
        ),
        heatmap_csv=f"{heatmap_api}?{urlencode({**heatmap_query, 'format': 'csv'})}",
        exports={
            "csv": f"{api}?{urlencode({**query, 'format': 'csv'})}",
            "xlsx": f"{api}?{urlencode({**query, 'format': 'xlsx'})}",
        },
    )
    return render(request, "frontend/dashboard.html", context)


def _read_once(found: QuerySet | None) -> QuerySet | None:
    """The same rows, by id: the two tables and the heatmap each put the machines (and
    organizations) in their SQL, and compiling an SME audience's query with its joins,
    five times, cost more than reading the ids once (bench/pages.py: a tenth of the
    SME administrator's 4-month view)."""
    if found is None:
        return None
    model = found.model
    ids = list(found.order_by().values_list("pk", flat=True))
    return model.objects.filter(pk__in=ids) if ids else found  # an empty IN () cannot compile


def _period_label(iso: str, unit: str) -> str:
    day = date.fromisoformat(iso)
    if unit == "month":
        return date_format(day, "M Y")
    if unit == "week":
        return _("week of %(day)s") % {"day": date_format(day, "j M")}
    return date_format(day, _("D j M"))


def _one_decimal(value: float, comma: str) -> str:
    """A figure as the tables show it: one decimal, the locale's separator."""
    return f"{value:.1f}".replace(".", comma)


def _table_body(rows: list[dict], entity: str, unit: str) -> str:
    """The table's <tr>s, built here with the locale's decimal separator looked up
    once: a few hundred rows through the template language, or through
    number_format per cell, cost more than every query of the page (bench/pages.py)."""
    comma = get_format("DECIMAL_SEPARATOR")
    periods = {}

    def number(value, suffix="") -> str:
        return "—" if value is None else _one_decimal(value, comma) + suffix

    lines = []
    for row in rows:
        start = row["period_start"]
        if start not in periods:
            periods[start] = escape(_period_label(start, unit))
        cells = [escape(row[f"{entity}_name"] or "")] if entity else []
        cells.append(periods[start])
        head = "".join(f"<td>{cell}</td>" for cell in cells)
        figures = [
            number(row["available_hours"]),
            number(row["booked_hours"]),
            number(row["used_hours"]),
            number(_percent(row["utilisation_booked"]), " %"),
            number(_percent(row["utilisation_used"]), " %"),
            str(row["bookings"]),
            str(row["no_shows"]),
            str(row["late_cancellations"]),
            str(row["refused_conflicts"] + row["refused_rules"] + row["rejected_by_manager"]),
        ]
        tail = "".join(f'<td class="num">{figure}</td>' for figure in figures)
        lines.append(f"<tr>{head}{tail}</tr>")
    return mark_safe("".join(lines))  # every text cell is escaped above


def _table_columns(entity: str) -> list[tuple[str, str]]:
    """The table's columns beneath the charts: (metric, heading); the exports hold all."""
    names = {
        "machine": _("Machine"),
        "machine_type": _("Machine type"),
        "organization": _("Organization"),
    }
    columns = [("period", _("Period"))]
    if entity:
        columns.insert(0, (f"{entity}_name", names[entity]))
    return [
        *columns,
        ("available_hours", _("Available h")),
        ("booked_hours", _("Booked h")),
        ("used_hours", _("Used h")),
        ("utilisation_booked", _("Booked %")),
        ("utilisation_used", _("Used %")),
        ("bookings", _("Bookings")),
        ("no_shows", _("No-shows")),
        ("late_cancellations", _("Late cancellations")),
        ("refused", _("Refused")),
    ]


def _percent(ratio):
    return None if ratio is None else round(ratio * 100, 1)


def _per_period(by_machine) -> list[dict]:
    """The whole platform's figures per period, summed from the machines' rows
    (every machine counted has a row in every period): the charts need no third
    table, whose capacity would be computed again."""
    periods: dict[str, dict] = {}
    summed = [
        "available_hours",
        "booked_hours",
        "no_shows",
        "late_cancellations",
        "refused_conflicts",
        "refused_rules",
        "rejected_by_manager",
    ]
    for row in by_machine.rows:
        sums = periods.setdefault(row["period_start"], dict.fromkeys(summed, 0))
        for name in summed:
            sums[name] += row[name]
    for sums in periods.values():
        available = sums["available_hours"]
        sums["utilisation_booked"] = sums["booked_hours"] / available if available else None
    return [{"period_start": start, **sums} for start, sums in sorted(periods.items())]


def _charts(by_machine, by_organization, unit: str) -> dict:
    """What dashboard.js draws (through json_script): labels and series only."""
    by_period = _per_period(by_machine)
    periods = [row["period_start"] for row in by_period]
    booked = {}
    for row in by_machine.rows:
        booked[row["machine"]] = booked.get(row["machine"], 0) + row["booked_hours"]
    top = sorted(booked, key=lambda m: -booked[m])[:CHART_MACHINES]
    series = {m: {} for m in top}
    names = {}
    for row in by_machine.rows:
        if row["machine"] in series:
            series[row["machine"]][row["period_start"]] = _percent(row["utilisation_booked"])
            names[row["machine"]] = row["machine_name"]
    charts = {
        "periods": [_period_label(p, unit) for p in periods],
        "utilisation": {
            "all": [_percent(r["utilisation_booked"]) for r in by_period],
            "all_label": _("All machines"),
            "machines": [
                {"label": names[m], "data": [series[m].get(p) for p in periods]} for m in top
            ],
        },
        "no_shows": {
            "series": [
                {"label": _("No-shows"), "data": [r["no_shows"] for r in by_period]},
                {
                    "label": _("Late cancellations"),
                    "data": [r["late_cancellations"] for r in by_period],
                },
            ],
        },
        "refused": {
            "series": [
                {"label": _("Conflicts"), "data": [r["refused_conflicts"] for r in by_period]},
                {"label": _("Broken rules"), "data": [r["refused_rules"] for r in by_period]},
                {
                    "label": _("Rejected by a manager"),
                    "data": [r["rejected_by_manager"] for r in by_period],
                },
            ],
        },
        "organizations": None,
        "axis": {"percent": _("Utilisation %"), "hours": _("Booked hours"), "count": _("Count")},
    }
    if by_organization is not None:
        rows = sorted(by_organization.rows, key=lambda r: -r["booked_hours"])
        rows = [r for r in rows if r["booked_hours"]][:CHART_ORGANIZATIONS]
        charts["organizations"] = {
            "labels": [r["organization_name"] or _("(none)") for r in rows],
            "data": [r["booked_hours"] for r in rows],
        }
    return charts


# Shades of the heatmap, by the percentage a cell shows: level n up to HEAT_STEPS[n]
# per cent, the darkest above the last step. The legend says the same in words.
HEAT_STEPS = [0, 20, 40, 60, 80]
MONDAY = date(2024, 1, 1)  # any Monday: the weekdays' names in the reader's language


def _heat_level(percent: int | None) -> str:
    if percent is None:
        return "closed"
    return str(next((n for n, step in enumerate(HEAT_STEPS) if percent <= step), len(HEAT_STEPS)))


def _heat_legend() -> list[tuple[str, str]]:
    legend = [("0", "0\u00a0%")]
    for n in range(1, len(HEAT_STEPS)):
        legend.append((str(n), f"{HEAT_STEPS[n - 1] + 1}–{HEAT_STEPS[n]}\u00a0%"))
    legend.append((str(len(HEAT_STEPS)), f"> {HEAT_STEPS[-1]}\u00a0%"))
    return [*legend, ("closed", _("closed"))]


def _heatmap(heatmap) -> dict | None:
    """analytics.peak_hours()'s 168 cells as a table: a row per local hour from
    the first to the last hour with available or booked time, a column per
    weekday; each cell says its occupancy (and, for screen readers, its hours),
    its shade repeats it. None when the period has no hour to show."""
    cells = heatmap.rows
    busy = [c["hour"] for c in cells if c["available_hours"] or c["booked_hours"]]
    if not busy:
        return None
    comma = get_format("DECIMAL_SEPARATOR")

    detail = _("%(booked)s h booked of %(available)s h")
    rows = []
    for hour in range(min(busy), max(busy) + 1):
        row = []
        for weekday in range(7):
            cell = cells[weekday * 24 + hour]
            occupancy = cell["occupancy"]
            percent = None if occupancy is None else round(occupancy * 100)
            row.append(
                {
                    "level": _heat_level(percent),
                    "text": "—" if percent is None else f"{percent}\u00a0%",
                    "detail": detail
                    % {
                        "booked": _one_decimal(cell["booked_hours"], comma),
                        "available": _one_decimal(cell["available_hours"], comma),
                    },
                }
            )
        rows.append({"hour": f"{hour:02d}:00", "cells": row})
    days = [MONDAY + timedelta(days=n) for n in range(7)]
    return {
        "days": [{"short": date_format(d, "D"), "name": date_format(d, "l")} for d in days],
        "rows": rows,
        "legend": _heat_legend(),
    }
