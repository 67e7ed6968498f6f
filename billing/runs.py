"""Billing runs: a platform's month turned into one draft invoice per organization.

1. Every billable event of the month becomes a usage record keyed by its source
   ("booking:42" + kind, "consumable-use:7"): completed or ended bookings (machine
   time, setup fee), late cancellations and no-shows (a share of the booked
   amount), consumables recorded that month.
2. Records are compared with those already stored: new ones are added, changed
   ones on drafts updated (audited, before → after), vanished ones on drafts
   removed. Records on issued invoices, and organizations whose invoice for the
   month is issued, are never touched.
3. Funding programmes pay their share of machine time, in time order, until
   their budget is spent; each allocation is its own negative line.
4. Draft totals are recomputed.

Everything is read and written in bulk: the number of queries depends on the
number of rows in batches of BATCH, never on the bookings of one organization."""

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.bulk import fetch_rows, insert_rows
from billing.models import (
    BillingRun,
    FundingAllocation,
    FundingProgramme,
    Invoice,
    InvoiceLine,
    Tariff,
    UsageRecord,
    money,
)
from billing.pricing import TariffBook, elapsed_minutes, price_time
from billing.services import CAN_INVOICE, _lock_platform_billing, apply_totals, vat_breakdown
from booking.models import Booking
from core.audit import jsonable, record
from core.models import AuditEvent, User
from equipment import permissions as perms
from equipment.models import Platform, PlatformMembership

BATCH = 2000
Kind = UsageRecord.Kind
# What a run compares between a stored record and the one it computes.
COMPARED = ("description", "quantity", "unit", "unit_price", "vat_rate", "amount", "tariff_id")
AMOUNT = COMPARED.index("amount")
# Columns written for a new usage record, then the `fields` of bill_period.
RECORD_FIELDS = (
    "platform_id",
    "period_start",
    "invoice_id",
    "consumable_use_id",
    "excluded",
    "created_at",
    "updated_at",
    "source",
    "kind",
    "organization_id",
    "occurred_at",
    "booking_id",
    *COMPARED,
)
LINE_FIELDS = (
    "invoice_id",
    "kind",
    "description",
    "service_date",
    "quantity",
    "unit",
    "unit_price",
    "vat_rate",
    "amount",
    "usage_id",
    "allocation_id",
    "booking_id",
)


MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def parse_month(text: str) -> date | None:
    """The first day of a month written YYYY-MM (years 2000-2999), or None."""
    found = MONTH.fullmatch(text.strip())
    if not found or not 2000 <= int(found[1]) <= 2999:
        return None
    return date(int(found[1]), int(found[2]), 1)


def month_bounds(month: date, tz) -> tuple[datetime, datetime]:
    """[first local midnight of the month, first of the next), as aware datetimes."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime.combine(first, datetime.min.time(), tzinfo=tz),
        datetime.combine(following, datetime.min.time(), tzinfo=tz),
    )


@dataclass
class Wanted:
    """A usage record as this run computes it."""

    source: str
    kind: str
    organization_id: int
    booking_id: int
    occurred_at: datetime
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    vat_rate: Decimal
    amount: Decimal
    tariff_id: int | None = None
    consumable_use_id: int | None = None


class _Pricer:
    """Turns booking rows into the usage records they are worth."""

    def __init__(self, platform: Platform, settings, now: datetime):
        self.tz = platform.tzinfo
        self.actual = settings.billable_time == settings.BillableTime.ACTUAL
        self.now = now
        self.book = TariffBook(Tariff.objects.filter(platform=platform))
        self.tiers = dict(
            PlatformMembership.objects.filter(platform=platform).values_list(
                "organization_id", "tier"
            )
        )
        self.problems: list[dict] = []
        # (tariff id, minutes) → Priced: a month repeats the same few durations.
        self.prices: dict[tuple[int, int], object] = {}
        # Translated once per run, not once per booking.
        self.text = {
            "time": _("%(machine)s, %(when)s (%(minutes)d min billed)"),
            "setup": _("Setup fee, %(machine)s, %(when)s"),
            "fee": _("%(what)s, %(machine)s, %(when)s (%(share)s %% of %(amount)s)"),
            Kind.NO_SHOW: _("No-show"),
            Kind.LATE_CANCELLATION: _("Late cancellation"),
        }

    def price(self, minutes: int, tariff: Tariff):
        key = (tariff.pk, minutes)
        found = self.prices.get(key)
        if found is None:
            found = self.prices[key] = price_time(minutes, tariff)
        return found

    def records(self, row) -> list[Wanted]:
        (pk, org, machine, machine_type, machine_name, start, end, status, late, inn, out) = row
        local_start = start.astimezone(self.tz)
        billable_as_time = status == Booking.Status.COMPLETED or (
            status == Booking.Status.CONFIRMED and end <= self.now
        )
        if not (
            billable_as_time
            or status == Booking.Status.NO_SHOW
            or (status == Booking.Status.CANCELLED and late)
        ):
            return []
        tier = self.tiers.get(org, PlatformMembership.Tier.STANDARD)
        tariff = self.book.find(
            machine_id=machine, machine_type_id=machine_type, tier=tier, day=local_start.date()
        )
        if tariff is None:
            self.problems.append(
                {
                    "booking": pk,
                    "code": "no_tariff",
                    "message": _("No tariff applies to %(machine)s on %(day)s.")
                    % {"machine": machine_name, "day": local_start.date()},
                }
            )
            return []
        source = f"booking:{pk}"
        when = f"{local_start:%Y-%m-%d %H:%M}"
        booked = self.price(elapsed_minutes(start, end), tariff)
        common = {"organization_id": org, "booking_id": pk, "occurred_at": start}
        common["tariff_id"] = tariff.pk
        common["vat_rate"] = tariff.vat_rate
        if billable_as_time:
            used = booked
            if self.actual and inn and out:
                used = self.price(elapsed_minutes(inn, out), tariff)
            found = [
                Wanted(
                    source,
                    Kind.MACHINE_TIME,
                    description=self.text["time"]
                    % {"machine": machine_name, "when": when, "minutes": used.minutes},
                    quantity=used.quantity,
                    unit="h",
                    unit_price=used.unit_price,
                    amount=used.amount,
                    **common,
                )
            ]
            if tariff.setup_fee:
                found.append(
                    Wanted(
                        source,
                        Kind.SETUP_FEE,
                        description=self.text["setup"] % {"machine": machine_name, "when": when},
                        quantity=Decimal(1),
                        unit="unit",
                        unit_price=tariff.setup_fee,
                        amount=money(tariff.setup_fee),
                        **common,
                    )
                )
            return found
        if status == Booking.Status.NO_SHOW:
            kind, share = Kind.NO_SHOW, tariff.no_show_share
        else:
            kind, share = Kind.LATE_CANCELLATION, tariff.late_cancellation_share
        label = self.text[kind]
        fee = money(booked.amount * share)
        if fee <= 0:
            return []
        return [
            Wanted(
                source,
                kind,
                description=self.text["fee"]
                % {
                    "what": label,
                    "machine": machine_name,
                    "when": when,
                    "share": f"{share * 100:.4g}",
                    "amount": booked.amount,
                },
                quantity=Decimal(1),
                unit="unit",
                unit_price=fee,
                amount=fee,
                **common,
            )
        ]


def _consumables(platform: Platform, start: datetime, end: datetime) -> list[Wanted]:
    from billing.models import ConsumableUse

    rows = ConsumableUse.objects.filter(
        booking__machine__platform=platform, recorded_at__gte=start, recorded_at__lt=end
    ).values_list(
        "pk",
        "booking_id",
        "booking__organization_id",
        "consumable__name",
        "consumable__unit",
        "consumable__unit_price",
        "consumable__vat_rate",
        "quantity",
        "recorded_at",
    )
    return [
        Wanted(
            f"consumable-use:{pk}",
            Kind.CONSUMABLE,
            organization_id=org,
            booking_id=booking,
            occurred_at=at,
            description=name,
            quantity=quantity,
            unit=unit,
            unit_price=price,
            vat_rate=vat,
            amount=money(quantity * price),
            consumable_use_id=pk,
        )
        for pk, booking, org, name, unit, price, vat, quantity, at in rows
    ]


def _line_for(usage: UsageRecord, tz) -> InvoiceLine:
    return InvoiceLine(
        invoice_id=usage.invoice_id,
        kind=usage.kind,
        description=usage.description,
        service_date=usage.occurred_at.astimezone(tz).date(),
        quantity=usage.quantity,
        unit=usage.unit,
        unit_price=usage.unit_price,
        vat_rate=usage.vat_rate,
        amount=usage.amount,
        usage=usage,
        booking_id=usage.booking_id,
    )


def _audit_many(by: User | None, action: str, model, items: list[tuple[int, str, dict]]) -> None:
    """One audit line per changed row, written in bulk (a run may change thousands)."""
    content_type = ContentType.objects.get_for_model(model)
    now = timezone.now()
    actor_id = by.pk if by and by.pk else None
    email = by.email if by and by.pk else ""
    insert_rows(
        AuditEvent,
        (
            "created_at",
            "actor_id",
            "actor_email",
            "action",
            "target_type_id",
            "target_id",
            "target_repr",
            "changes",
        ),
        [
            (
                now,
                actor_id,
                email,
                action,
                content_type.pk,
                str(pk),
                text[:200],
                {k: jsonable(v) for k, v in changes.items()},
            )
            for pk, text, changes in items
        ],
        ids=False,
    )


@transaction.atomic
def bill_period(
    *,
    platform: Platform,
    month: date,
    by: User | None = None,
    progress: Callable[[int], None] | None = None,
) -> BillingRun:
    """Bill `platform`'s `month`; idempotent. `by` is None for the system (the
    management command); a person needs the platform's accountant role.
    `progress(n)` is called as bookings are priced."""
    if by is not None:
        perms.require_platform_role(by, platform, CAN_INVOICE)
    settings = _lock_platform_billing(platform.pk)
    month = month.replace(day=1)
    tz = platform.tzinfo
    start, end = month_bounds(month, tz)
    now = timezone.now()
    run = BillingRun.objects.create(platform=platform, period_start=month, started_by=by)

    closed = set(
        Invoice.objects.filter(
            platform=platform,
            kind=Invoice.Kind.INVOICE,
            period_start=month,
            status=Invoice.Status.ISSUED,
        ).values_list("organization_id", flat=True)
    )

    # 1. What the month is worth.
    pricer = _Pricer(platform, settings, now)
    wanted: dict[tuple[str, str], Wanted] = {}
    bookings = (
        Booking.objects.filter(machine__platform=platform, start__gte=start, start__lt=end)
        .order_by("start", "pk")  # lines in time order
        .values_list(
            "pk",
            "organization_id",
            "machine_id",
            "machine__machine_type_id",
            "machine__name",
            "start",
            "end",
            "status",
            "late_cancellation",
            "checked_in_at",
            "checked_out_at",
        )
    )
    seen = 0
    for row in fetch_rows(bookings):
        seen += 1
        if progress and seen % 1000 == 0:
            progress(1000)
        if row[1] in closed:
            continue
        for item in pricer.records(row):
            wanted[(item.source, item.kind)] = item
    if progress:
        progress(seen % 1000)
    for item in _consumables(platform, start, end):
        if item.organization_id not in closed:
            wanted[(item.source, item.kind)] = item

    # 2. The drafts, one per organization.
    drafts = {
        invoice.organization_id: invoice
        for invoice in Invoice.objects.filter(
            platform=platform,
            kind=Invoice.Kind.INVOICE,
            period_start=month,
            status=Invoice.Status.DRAFT,
        )
    }
    period_end = (end - timedelta(days=1)).date()
    missing = {item.organization_id for item in wanted.values()} - set(drafts)
    Invoice.objects.bulk_create(
        [
            Invoice(
                platform=platform,
                organization_id=org,
                period_start=month,
                period_end=period_end,
                currency=platform.currency,
            )
            for org in sorted(missing)
        ],
        batch_size=BATCH,
    )
    if missing:
        drafts = {
            invoice.organization_id: invoice
            for invoice in Invoice.objects.filter(
                platform=platform,
                kind=Invoice.Kind.INVOICE,
                period_start=month,
                status=Invoice.Status.DRAFT,
            )
        }

    # 3. Usage records: add, update, remove. Stored ones are read as plain values:
    # model instances for every record would cost more than the rest of the run.
    stored = {}
    for pk, source, kind, invoice_id, invoice_status, excluded, *values in (
        UsageRecord.objects.filter(platform=platform, period_start=month)
        .order_by()
        .values_list("pk", "source", "kind", "invoice_id", "invoice__status", "excluded", *COMPARED)
    ):
        issued = invoice_status == Invoice.Status.ISSUED
        stored[(source, kind)] = (
            pk,
            invoice_id,
            issued,
            excluded,
            tuple(values),
        )
    to_create: list[tuple[Wanted, int]] = []
    to_update, changes, to_remove = [], [], []
    fields = ("source", "kind", "organization_id", "occurred_at", "booking_id", *COMPARED)
    for key, item in wanted.items():
        invoice = drafts[item.organization_id]
        found = stored.get(key)
        if found is None:
            to_create.append((item, invoice.pk))
            continue
        pk, invoice_id, issued, excluded, values = found
        if issued:
            continue
        current = tuple(getattr(item, f) for f in COMPARED)
        if current == values and invoice_id == invoice.pk:
            continue
        diff = {
            f: [old, new]
            for f, old, new in zip(COMPARED, values, current, strict=True)
            if old != new
        }
        usage = UsageRecord(
            pk=pk,
            platform=platform,
            period_start=month,
            invoice=invoice,
            excluded=excluded,
            updated_at=now,
            **{f: getattr(item, f) for f in fields},
        )
        to_update.append(usage)
        changes.append((pk, f"{item.source} {item.kind}", diff))
    for key, (pk, _invoice_id, issued, _excluded, values) in stored.items():
        if key not in wanted and not issued:
            to_remove.append((pk, f"{key[0]} {key[1]}", values[AMOUNT]))

    if to_remove:
        removed_ids = [pk for pk, _name, _amount in to_remove]
        allocations = FundingAllocation.objects.filter(usage_id__in=removed_ids)
        InvoiceLine.objects.filter(
            Q(usage_id__in=removed_ids) | Q(allocation__in=allocations)
        ).delete()
        allocations.delete()
        UsageRecord.objects.filter(pk__in=removed_ids).delete()
        _audit_many(
            by,
            "usagerecord.delete",
            UsageRecord,
            [(pk, name, {"amount": amount}) for pk, name, amount in to_remove],
        )
    # New records and their lines go in as plain tuples (billing/bulk.py): model
    # instances for every row would cost more than the rest of the run.
    postgres = connection.vendor == "postgresql"
    created_ids = insert_rows(
        UsageRecord,
        RECORD_FIELDS,
        [
            (
                platform.pk,
                month,
                invoice_id,
                item.consumable_use_id,
                False,
                now,
                now,
                *(getattr(item, f) for f in fields),
            )
            for item, invoice_id in to_create
        ],
        ids=not postgres,
    )
    if postgres:
        # The lines are copies of the records: PostgreSQL makes them from the rows
        # just written (this run's `created_at`), in one statement, without sending
        # them back and forth. Ids follow the records' order, as on SQLite.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO billing_invoiceline ({", ".join(LINE_FIELDS)})
                    SELECT u.invoice_id, u.kind, u.description,
                           (u.occurred_at AT TIME ZONE %s)::date, u.quantity, u.unit,
                           u.unit_price, u.vat_rate, u.amount, u.id, NULL, u.booking_id
                    FROM billing_usagerecord u
                    WHERE u.platform_id = %s AND u.period_start = %s AND u.created_at = %s
                    ORDER BY u.id""",
                [str(tz), platform.pk, month, now],
            )
            created = cursor.rowcount
    else:
        created = len(created_ids)
        insert_rows(
            InvoiceLine,
            LINE_FIELDS,
            [
                (
                    invoice_id,
                    item.kind,
                    item.description,
                    item.occurred_at.astimezone(tz).date(),
                    item.quantity,
                    item.unit,
                    item.unit_price,
                    item.vat_rate,
                    item.amount,
                    usage_id,
                    None,
                    item.booking_id,
                )
                for (item, invoice_id), usage_id in zip(to_create, created_ids, strict=True)
            ],
        )
    if created != len(to_create):  # a record without its line would be lost on the invoice
        raise RuntimeError(f"{len(to_create)} usage records added but {created} lines")
    if to_update:
        UsageRecord.objects.bulk_update(
            to_update, [*COMPARED, "invoice", "updated_at"], batch_size=BATCH
        )
        _audit_many(by, "usagerecord.update", UsageRecord, changes)

    # Changed records' lines are rewritten (or added back, unless an accountant removed them).
    if to_update:
        updated_ids = [u.pk for u in to_update]
        lines = {
            line.usage_id: line for line in InvoiceLine.objects.filter(usage_id__in=updated_ids)
        }
        rewritten, added = [], []
        for usage in to_update:
            fresh = _line_for(usage, tz)
            line = lines.get(usage.pk)
            if line is None:
                if not usage.excluded:
                    added.append(fresh)
                continue
            fresh.pk = line.pk
            rewritten.append(fresh)
        InvoiceLine.objects.bulk_create(added, batch_size=BATCH)
        InvoiceLine.objects.bulk_update(
            rewritten,
            ["invoice", "description", "quantity", "unit", "unit_price", "vat_rate", "amount"],
            batch_size=BATCH,
        )

    # 4. Funding.
    funded = _fund(platform, month, tz, drafts, closed)

    # 5. Totals; drafts left without lines go.
    draft_ids = [d.pk for d in drafts.values()]
    # Summed per invoice and rate in SQL: vat_breakdown adds the sums as it would the lines.
    per_invoice = defaultdict(list)
    for invoice_id, rate, amount in (
        InvoiceLine.objects.filter(invoice_id__in=draft_ids)
        .order_by()
        .values_list("invoice_id", "vat_rate")
        .annotate(total=Sum("amount"))
    ):
        per_invoice[invoice_id].append((rate, amount))
    empty = [d for d in drafts.values() if d.pk not in per_invoice]
    if empty:
        UsageRecord.objects.filter(invoice__in=empty).update(invoice=None)
        Invoice.objects.filter(pk__in=[d.pk for d in empty]).delete()
    kept = [d for d in drafts.values() if d.pk in per_invoice]
    for invoice in kept:
        apply_totals(invoice, vat_breakdown(per_invoice[invoice.pk]))
        invoice.updated_at = now
    Invoice.objects.bulk_update(
        kept,
        ["vat_breakdown", "total_without_tax", "total_vat", "total_with_tax", "updated_at"],
        batch_size=BATCH,
    )

    run.finished_at = timezone.now()
    run.report = {
        "month": f"{month:%Y-%m}",
        "bookings": seen,
        "usage_created": len(to_create),
        "usage_updated": len(to_update),
        "usage_removed": len(to_remove),
        "funding": funded,
        "invoices_created": len(missing),
        "draft_invoices": len(kept),
        "organizations_already_invoiced": sorted(closed),
        "problems": pricer.problems,
    }
    run.save(update_fields=["finished_at", "report"])
    record(
        actor=by,
        action="billingrun.create",
        target=run,
        changes={k: v for k, v in run.report.items() if k != "problems"},
    )
    return run


def _fund(platform: Platform, month: date, tz, drafts: dict, closed: set) -> dict:
    """(Re)compute the programmes' allocations on this month's drafts, in time
    order; a programme whose budget runs out mid-month funds what remains."""
    label_ids = list(platform.labels.values_list("pk", flat=True))
    first = month
    last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    programmes = list(
        FundingProgramme.objects.select_for_update()
        .filter(label_id__in=label_ids, starts_on__lte=last, ends_on__gte=first)
        .order_by("starts_on", "pk")
    )
    draft_ids = [d.pk for d in drafts.values()]
    usages = {
        row[0]: row
        for row in fetch_rows(
            UsageRecord.objects.filter(
                invoice_id__in=draft_ids, kind=Kind.MACHINE_TIME, excluded=False
            )
            .order_by("occurred_at", "pk")
            .values_list(
                "pk",
                "organization_id",
                "occurred_at",
                "amount",
                "vat_rate",
                "booking_id",
                "invoice_id",
            )
        )
    }
    # usage id → (allocation id, programme id, amount), as plain values.
    stored = {
        usage_id: (pk, programme_id, amount)
        for pk, usage_id, programme_id, amount in FundingAllocation.objects.filter(
            usage__invoice_id__in=draft_ids, usage__platform=platform
        )
        .order_by()
        .values_list("pk", "usage_id", "programme_id", "amount")
    }
    if not programmes and not stored:
        return {}
    eligible = defaultdict(set)
    for programme_id, org in FundingProgramme.organizations.through.objects.filter(
        fundingprogramme_id__in=[p.pk for p in programmes]
    ).values_list("fundingprogramme_id", "organization_id"):
        eligible[programme_id].add(org)
    # What each programme has given outside this month's drafts.
    remaining = {p.pk: p.budget for p in programmes}
    for programme_id, amount in (
        FundingAllocation.objects.filter(programme__in=programmes)
        .exclude(usage__invoice_id__in=draft_ids, usage__platform=platform)
        .values_list("programme_id", "amount")
    ):
        remaining[programme_id] -= amount

    wanted = {}
    for pk, org, occurred_at, usage_amount, _vat, _booking, _invoice in usages.values():
        day = occurred_at.astimezone(tz).date()
        for programme in programmes:
            if not programme.starts_on <= day <= programme.ends_on:
                continue
            if eligible[programme.pk] and org not in eligible[programme.pk]:
                continue
            amount = min(money(usage_amount * programme.share), remaining[programme.pk])
            if amount > 0:
                remaining[programme.pk] -= amount
                wanted[pk] = (programme, amount)
            break  # one programme per record: never funded twice

    to_create, to_update, to_delete = [], [], []
    for usage_id, (allocation_id, _programme_id, _amount) in stored.items():
        if usage_id not in wanted:
            to_delete.append(allocation_id)
    for usage_id, (programme, amount) in wanted.items():
        found = stored.get(usage_id)
        if found is None:
            to_create.append((usage_id, programme, amount))
        elif found[2] != amount or found[1] != programme.pk:
            to_update.append(
                FundingAllocation(
                    pk=found[0], usage_id=usage_id, programme=programme, amount=amount
                )
            )
    if to_delete:
        InvoiceLine.objects.filter(allocation_id__in=to_delete).delete()
        FundingAllocation.objects.filter(pk__in=to_delete).delete()
    now = timezone.now()
    postgres = connection.vendor == "postgresql"
    created_ids = insert_rows(
        FundingAllocation,
        ("programme_id", "usage_id", "amount", "created_at"),
        [(programme.pk, usage_id, amount, now) for usage_id, programme, amount in to_create],
        ids=not postgres,
    )
    FundingAllocation.objects.bulk_update(to_update, ["amount", "programme"], batch_size=BATCH)

    text = _("Funded by %(programme)s (%(share)s %% of machine time)")
    descriptions = {
        p.pk: text % {"programme": p.name, "share": f"{p.share * 100:.4g}"} for p in programmes
    }

    def line(allocation_id: int, usage_id: int, programme, amount: Decimal) -> tuple:
        """The allocation's line, as LINE_FIELDS."""
        _pk, _org, occurred_at, _amount, vat_rate, booking_id, invoice_id = usages[usage_id]
        return (
            invoice_id,
            InvoiceLine.Kind.FUNDING,
            descriptions[programme.pk],
            occurred_at.astimezone(tz).date(),
            Decimal(1),
            "unit",
            -amount,
            vat_rate,
            -amount,
            None,
            allocation_id,
            booking_id,
        )

    if postgres and to_create:
        # As for the records' lines: made in the database from the allocations just
        # written (this call's `created_at`) and their records.
        whens = " ".join("WHEN %s THEN %s" for _p in descriptions)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO billing_invoiceline ({", ".join(LINE_FIELDS)})
                    SELECT u.invoice_id, %s, CASE a.programme_id {whens} END,
                           (u.occurred_at AT TIME ZONE %s)::date, 1, 'unit', -a.amount,
                           u.vat_rate, -a.amount, NULL, a.id, u.booking_id
                    FROM billing_fundingallocation a
                    JOIN billing_usagerecord u ON u.id = a.usage_id
                    WHERE a.created_at = %s AND a.programme_id = ANY(%s)
                    ORDER BY a.id""",
                [
                    InvoiceLine.Kind.FUNDING.value,
                    *(x for item in descriptions.items() for x in item),
                    str(tz),
                    now,
                    list(descriptions),
                ],
            )
            if cursor.rowcount != len(to_create):
                raise RuntimeError(f"{len(to_create)} allocations but {cursor.rowcount} lines")
    else:
        insert_rows(
            InvoiceLine,
            LINE_FIELDS,
            [
                line(allocation_id, usage_id, programme, amount)
                for allocation_id, (usage_id, programme, amount) in zip(
                    created_ids, to_create, strict=True
                )
            ],
        )
    if to_update:
        lines = {
            ln.allocation_id: ln
            for ln in InvoiceLine.objects.filter(allocation__in=[a.pk for a in to_update])
        }
        rewritten, added = [], []
        for allocation in to_update:
            fresh = InvoiceLine(
                **dict(
                    zip(
                        LINE_FIELDS,
                        line(
                            allocation.pk,
                            allocation.usage_id,
                            allocation.programme,
                            allocation.amount,
                        ),
                        strict=True,
                    )
                )
            )
            if allocation.pk in lines:
                fresh.pk = lines[allocation.pk].pk
                rewritten.append(fresh)
            else:
                added.append(fresh)
        InvoiceLine.objects.bulk_create(added, batch_size=BATCH)
        InvoiceLine.objects.bulk_update(
            rewritten, ["description", "unit_price", "vat_rate", "amount"], batch_size=BATCH
        )
    totals = defaultdict(Decimal)
    for programme, amount in wanted.values():
        totals[programme.pk] += amount
    return {str(pk): f"{amount:.2f}" for pk, amount in totals.items()}
