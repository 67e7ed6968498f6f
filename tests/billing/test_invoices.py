"""Issuing, immutability (model and database), the hash chain, credit notes,
payments, bad input, and concurrent issuing on PostgreSQL."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import services
from billing.models import CardPayment, Invoice, InvoiceIssued, InvoiceLine, Payment, Tariff
from core.models import AuditEvent
from tests.billing.conftest import booking, paris
from tests.billing.support import draft_of, run

API = "/api/v1"


@pytest.fixture
def draft(billing):
    booking(billing.a, paris(5, 9), paris(5, 10, 10))
    booking(billing.a, paris(6, 9), paris(6, 9, 20))
    run(billing)
    return draft_of(billing.a)


def issue(invoice, world, **kwargs):
    return services.issue_invoice(invoice=invoice, by=world.a.accountant, **kwargs)


def test_issuing_numbers_copies_both_parties_and_fixes_dates_and_totals(billing, draft):
    org = billing.a.org
    org.address_line1, org.postal_code, org.city = "3 Hauptstraße", "10115", "Berlin"
    org.vat_number = "DE136695976"
    org.save()

    invoice = issue(draft, billing, issue_date=date(2026, 11, 3))

    assert invoice.number == "FAB-2026-000001"
    assert (invoice.issue_date, invoice.due_date, invoice.payment_terms_days) == (
        date(2026, 11, 3),
        date(2026, 12, 3),
        30,
    )
    assert (invoice.seller_name, invoice.seller_siret, invoice.seller_vat_number) == (
        "Platform a SAS",
        "73282932000074",
        "FR44732829320",
    )
    assert invoice.seller_address == "12 rue de Gerland\n69007 Lyon"
    assert (invoice.buyer_name, invoice.buyer_address, invoice.buyer_vat_number) == (
        "SME a",
        "3 Hauptstraße\n10115 Berlin",
        "DE136695976",
    )
    assert "€40" in invoice.late_payment_mentions and "three times" in invoice.late_payment_mentions
    # 59.38 + 12 + 23.75 + 12 = 107.13; VAT 21.426 → 21.43
    assert (invoice.total_without_tax, invoice.total_vat, invoice.total_with_tax) == (
        Decimal("107.13"),
        Decimal("21.43"),
        Decimal("128.56"),
    )
    assert len(invoice.hash) == 64 and invoice.previous_hash == ""
    # The buyer renaming itself later changes nothing on the issued invoice.
    org.legal_name = "SME a renamed"
    org.save()
    assert Invoice.objects.get(pk=invoice.pk).buyer_name == "SME a"


def test_numbers_follow_each_other_per_platform_and_year_and_credit_notes_have_their_own(
    billing, draft
):
    first = issue(draft, billing, issue_date=date(2026, 11, 3))
    booking(billing.a, paris(5, 9, month=11), paris(5, 10, month=11))
    run(billing, month=date(2026, 11, 1))
    november = Invoice.objects.get(period_start=date(2026, 11, 1))
    second = issue(november, billing, issue_date=date(2026, 12, 1))
    note = services.create_credit_note(invoice=first, by=billing.a.accountant)
    note = issue(note, billing, issue_date=date(2026, 12, 2))

    assert [first.number, second.number, note.number] == [
        "FAB-2026-000001",
        "FAB-2026-000002",
        "FAB-AV-2026-000001",
    ]
    assert note.credited_invoice == first
    assert note.total_with_tax == first.total_with_tax
    assert [note.chain_index, note.previous_hash] == [3, second.hash]
    # Crediting more than the invoice is refused.
    again = services.create_credit_note(invoice=first, by=billing.a.accountant)
    with pytest.raises(Exception, match="more than"):
        issue(again, billing)


def test_an_issued_invoice_refuses_save_and_delete_in_the_model(billing, draft):
    invoice = issue(draft, billing)
    line = invoice.lines.first()

    invoice.buyer_name = "Someone else"
    with pytest.raises(InvoiceIssued):
        invoice.save()
    with pytest.raises(InvoiceIssued):
        Invoice.objects.get(pk=invoice.pk).delete()
    line.amount = Decimal("0.01")
    with pytest.raises(InvoiceIssued):
        line.save()
    with pytest.raises(InvoiceIssued):
        line.delete()
    with pytest.raises(InvoiceIssued):
        InvoiceLine(
            invoice=invoice, description="x", quantity=1, unit="u", unit_price=1, amount=1
        ).save()


def _refused(sql_or_call):
    with pytest.raises(DatabaseError), transaction.atomic():
        if callable(sql_or_call):
            sql_or_call()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql_or_call)


def test_an_issued_invoice_refuses_update_and_delete_in_the_database(billing, draft):
    """QuerySet.update() and delete() and raw SQL skip the model: the triggers
    of migration 0002 refuse them, on SQLite as on PostgreSQL."""
    invoice = issue(draft, billing)
    line = invoice.lines.first()
    before = (Invoice.objects.filter(pk=invoice.pk).values().get(), line.amount)

    _refused(lambda: Invoice.objects.filter(pk=invoice.pk).update(total_with_tax=0))
    _refused(lambda: Invoice.objects.filter(pk=invoice.pk).update(status="draft"))
    _refused(lambda: Invoice.objects.filter(pk=invoice.pk).delete())
    _refused(lambda: InvoiceLine.objects.filter(pk=line.pk).update(amount=0))
    _refused(lambda: InvoiceLine.objects.filter(pk=line.pk).delete())
    _refused(f"UPDATE billing_invoice SET buyer_name = 'x' WHERE id = {invoice.pk}")
    _refused(f"DELETE FROM billing_invoice WHERE id = {invoice.pk}")
    _refused(f"UPDATE billing_invoiceline SET amount = 0 WHERE id = {line.pk}")
    _refused(f"DELETE FROM billing_invoiceline WHERE id = {line.pk}")
    _refused(
        "INSERT INTO billing_invoiceline (invoice_id, kind, description, quantity, unit, "
        f"unit_price, vat_rate, amount) VALUES ({invoice.pk}, 'manual', 'x', 1, 'u', 1, 20, 1)"
    )

    assert (Invoice.objects.filter(pk=invoice.pk).values().get(), line.amount) == before
    assert InvoiceLine.objects.get(pk=line.pk).amount == line.amount
    # Drafts stay free to change.
    other = Invoice.objects.create(platform=billing.a.platform, organization=billing.b.org)
    assert Invoice.objects.filter(pk=other.pk).update(total_with_tax=1) == 1


def test_a_statement_inserting_many_lines_is_refused_whole_if_one_is_on_an_issued_invoice(
    billing, draft
):
    """Billing runs insert lines by the thousand (INSERT … SELECT, COPY): PostgreSQL
    checks them once per statement (migration 0003), SQLite per row; either way a
    single line aimed at an issued invoice refuses the whole statement."""
    invoice = issue(draft, billing)
    other = Invoice.objects.create(platform=billing.a.platform, organization=billing.b.org)
    before = InvoiceLine.objects.count()

    _refused(
        "INSERT INTO billing_invoiceline (invoice_id, kind, description, quantity, unit, "
        "unit_price, vat_rate, amount) "
        f"SELECT id, 'manual', 'x', 1, 'u', 1, 20, 1 FROM billing_invoice "
        f"WHERE id IN ({other.pk}, {invoice.pk}) ORDER BY id = {invoice.pk}"
    )

    assert InvoiceLine.objects.count() == before
    with connection.cursor() as cursor:  # the draft alone: accepted
        cursor.execute(
            "INSERT INTO billing_invoiceline (invoice_id, kind, description, quantity, unit, "
            f"unit_price, vat_rate, amount) VALUES ({other.pk}, 'manual', 'x', 1, 'u', 1, 20, 1)"
        )
    assert InvoiceLine.objects.count() == before + 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_copy_into_an_issued_invoice_is_refused(billing, draft):
    from billing.bulk import insert_rows

    invoice = issue(draft, billing)
    before = invoice.lines.count()
    row = (invoice.pk, "manual", "x", None, Decimal(1), "u", Decimal(1), Decimal(20), Decimal(1))
    fields = ("invoice_id", "kind", "description", "service_date", "quantity", "unit")
    fields += ("unit_price", "vat_rate", "amount")

    _refused(lambda: insert_rows(InvoiceLine, fields, [row], ids=False))

    assert invoice.lines.count() == before


def test_the_chain_detects_an_edited_row(billing, draft, capsys):
    first = issue(draft, billing)
    booking(billing.a, paris(5, 9, month=11), paris(5, 10, month=11))
    run(billing, month=date(2026, 11, 1))
    second = issue(Invoice.objects.get(period_start=date(2026, 11, 1)), billing)
    call_command("verify_invoice_chain")
    assert "2 issued document(s) checked" in capsys.readouterr().out

    line = first.lines.first()
    with_triggers_off(f"UPDATE billing_invoiceline SET amount = 1 WHERE id = {line.pk}")

    with pytest.raises(CommandError):
        call_command("verify_invoice_chain")
    assert f"{first.number}: its content does not match its hash" in capsys.readouterr().err
    assert second.previous_hash == first.hash


def test_the_chain_detects_a_removed_document(billing, draft):
    first = issue(draft, billing)
    booking(billing.a, paris(5, 9, month=11), paris(5, 10, month=11))
    run(billing, month=date(2026, 11, 1))
    issue(Invoice.objects.get(period_start=date(2026, 11, 1)), billing)

    with_triggers_off(
        f"UPDATE billing_usagerecord SET invoice_id = NULL WHERE invoice_id = {first.pk}"
    )
    with_triggers_off(f"DELETE FROM billing_invoiceline WHERE invoice_id = {first.pk}")
    with_triggers_off(f"DELETE FROM billing_invoice WHERE id = {first.pk}")

    with pytest.raises(CommandError, match="problem"):
        call_command("verify_invoice_chain")


def with_triggers_off(sql: str) -> None:
    from importlib import import_module

    guard = import_module("billing.migrations.0002_immutable_issued_invoices")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
            cursor.execute(sql)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            for name in guard.SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(sql)
            for statement in guard.SQLITE:
                cursor.execute(statement)


# --- Through the API: bad input, nothing changed ------------------------------------------------


def snapshot():
    return (
        list(Invoice.objects.order_by("pk").values()),
        list(InvoiceLine.objects.order_by("pk").values()),
        Payment.objects.count(),
        AuditEvent.objects.count(),
    )


def test_bad_input_is_a_clear_4xx_and_changes_nothing(billing, draft, api):
    api.as_user(billing.a.accountant)
    empty = Invoice.objects.create(platform=billing.a.platform, organization=billing.b.org)
    issued = issue(draft, billing)
    issued_line = issued.lines.first()
    other = Invoice.objects.create(
        platform=billing.b.platform, organization=billing.b.org, period_start=date(2026, 10, 1)
    )
    line = {"description": "Extra", "quantity": "-1", "unit": "h", "unit_price": "10"}
    before = snapshot()

    attempts = [
        (api.post(f"{API}/invoices/{empty.pk}/issue/"), 400, "invalid"),
        (api.post(f"{API}/invoices/{issued.pk}/issue/"), 409, "already_issued"),
        (
            api.patch(f"{API}/invoice-lines/{issued_line.pk}/", {"quantity": "2"}),
            409,
            "invoice_issued",
        ),
        (api.delete(f"{API}/invoice-lines/{issued_line.pk}/"), 409, "invoice_issued"),
        (
            api.post(f"{API}/invoice-lines/", {**line, "invoice": issued.pk, "quantity": "1"}),
            409,
            "invoice_issued",
        ),
        (api.post(f"{API}/invoice-lines/", {**line, "invoice": empty.pk}), 400, "invalid"),
        (api.post(f"{API}/invoices/{empty.pk}/payments/", {}), 409, "invoice_draft"),
        (api.post(f"{API}/invoices/{other.pk}/payments/", {}), 404, "not_found"),
        (api.post(f"{API}/invoices/{other.pk}/issue/"), 404, "not_found"),
        (api.post(f"{API}/invoices/{issued.pk}/payments/", {"amount": "9999"}), 400, "invalid"),
        (api.delete(f"{API}/invoices/{issued.pk}/"), 405, "method_not_allowed"),
    ]

    for response, status, code in attempts:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (
            response.request["PATH_INFO"],
            response.json(),
        )
    assert snapshot() == before


def test_a_tariff_overlapping_another_of_the_same_scope_is_refused(billing, api):
    api.as_user(billing.a.manager)
    body = {
        "platform": billing.a.platform.pk,
        "machine_type": billing.a.machine.machine_type_id,
        "valid_from": "2026-06-01",
        "valid_until": "2026-12-31",
        "hourly_rate": "50.00",
    }
    count = Tariff.objects.count()

    response = api.post(f"{API}/tariffs/", body)

    assert response.status_code == 400
    assert "valid_from" in response.json()["error"]["details"]["fields"]
    assert Tariff.objects.count() == count
    # Another tier, or a period after the existing one ends, is fine.
    Tariff.objects.filter(pk=billing.a.tariff.pk).update(valid_until=date(2026, 5, 31))
    assert api.post(f"{API}/tariffs/", body).status_code == 201
    assert api.post(f"{API}/tariffs/", {**body, "tier": "partner"}).status_code == 201


def test_drafts_are_edited_line_by_line_and_issued_invoices_are_paid_by_hand(billing, draft, api):
    api.as_user(billing.a.accountant)
    response = api.post(
        f"{API}/invoice-lines/",
        {
            "invoice": draft.pk,
            "description": "Training",
            "quantity": "1.5",
            "unit": "h",
            "unit_price": "33.333",
            "vat_rate": "20",
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "50.00"  # 49.9995 → 50.00
    line_id = response.json()["id"]
    assert api.patch(f"{API}/invoice-lines/{line_id}/", {"quantity": "1"}).json()["amount"] == (
        "33.33"
    )
    assert api.get(f"{API}/invoices/{draft.pk}/").json()["total_without_tax"] == "140.46"

    body = api.post(f"{API}/invoices/{draft.pk}/issue/").json()
    assert body["number"] == "FAB-2026-000001" and body["paid"] is False
    paid = api.post(
        f"{API}/invoices/{draft.pk}/payments/", {"reference": "VIR 42", "received_on": "2026-11-20"}
    )
    assert paid.status_code == 201 and paid.json()["amount"] == body["total_with_tax"]
    assert api.get(f"{API}/invoices/{draft.pk}/").json()["paid"] is True
    assert api.post(f"{API}/invoices/{draft.pk}/payments/", {}).status_code == 409


def test_a_bank_payment_after_a_partial_credit_note_takes_only_what_remains_due(
    billing, draft, api
):
    invoice = issue(draft, billing)
    note = services.create_credit_note(invoice=invoice, by=billing.a.accountant)
    _first, *credited = note.lines.order_by("service_date", "pk")
    for line in credited:  # credit all but the first line
        services.remove_line(line=line, by=billing.a.accountant)
    note = issue(note, billing)
    due = invoice.total_with_tax - note.total_with_tax
    assert invoice.remaining_due() == due > 0

    api.as_user(billing.a.accountant)
    url = f"{API}/invoices/{invoice.pk}/payments/"
    too_much = api.post(url, {"amount": str(due + Decimal("0.01")), "received_on": "2026-11-20"})
    assert too_much.status_code == 400 and "amount" in too_much.json()["error"]["details"]["fields"]
    paid = api.post(url, {"reference": "VIR 43", "received_on": "2026-11-20"})
    assert paid.status_code == 201, paid.json()
    assert paid.json()["amount"] == str(due)
    assert api.post(url, {}).json()["error"]["code"] == "invoice_paid"


def test_smes_see_their_issued_invoices_only(billing, draft, api):
    api.as_user(billing.a.org_admin)
    assert api.get(f"{API}/invoices/{draft.pk}/").status_code == 404  # a draft: not yet
    issue(draft, billing)
    for user in (billing.a.org_admin, billing.a.org_accountant):
        api.as_user(user)
        assert api.get(f"{API}/invoices/{draft.pk}/").status_code == 200
        assert [i["id"] for i in api.get(f"{API}/invoices/").json()["results"]] == [draft.pk]
    for user in (
        billing.a.org_member,
        billing.a.operator,
        billing.b.accountant,
        billing.b.org_admin,
    ):
        api.as_user(user)
        assert api.get(f"{API}/invoices/{draft.pk}/").status_code == 404


# --- Concurrent issuing on real PostgreSQL connections ---------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_gives_gapless_unique_numbers(world):
    from tests.billing.conftest import settings_for

    settings_for(world.a.platform, "RACE")
    drafts = []
    for n in range(12):
        invoice = Invoice.objects.create(
            platform=world.a.platform,
            organization=world.a.org,
            period_start=date(2020, 1, 1) + timedelta(days=31 * n),
        )
        InvoiceLine.objects.create(
            invoice=invoice, description="x", quantity=1, unit="h", unit_price=10, amount=10
        )
        drafts.append(invoice)
    barrier = threading.Barrier(len(drafts))
    errors = []

    def issue_one(invoice):
        try:
            barrier.wait()
            services.issue_invoice(
                invoice=invoice, by=world.a.accountant, issue_date=date(2026, 11, 22)
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=issue_one, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    issued = Invoice.objects.filter(status="issued").order_by("chain_index")
    assert sorted(i.number for i in issued) == [f"RACE-2026-{n:06d}" for n in range(1, 13)]
    assert [i.chain_index for i in issued] == list(range(1, 13))
    from billing.chain import verify

    assert verify() == []


def test_listing_invoices_takes_the_same_queries_however_many_there_are(
    billing, draft, api, django_assert_max_num_queries
):
    api.as_user(billing.a.accountant)
    with CaptureQueriesContext(connection) as one:
        assert api.get(f"{API}/invoices/").json()["count"] == 1

    # Six documents: the invoice, issued, paid in part and tried by card; a draft credit
    # note on it; four drafts with lines.
    invoice = issue(draft, billing)
    services.record_payment(
        invoice=invoice,
        by=billing.a.accountant,
        amount=Decimal("10.00"),
        reference="VIR",
        received_on=date(2026, 11, 20),
    )
    services.create_credit_note(invoice=invoice, by=billing.a.accountant)
    CardPayment.objects.create(
        invoice=invoice, attempt=1, amount=Decimal("5.00"), currency="EUR", payment_intent="pi_1"
    )
    for month in (6, 7, 8, 9):
        more = Invoice.objects.create(
            platform=billing.a.platform,
            organization=billing.a.org,
            period_start=date(2026, month, 1),
        )
        for quantity in (1, 2):
            services.add_line(
                invoice=more,
                by=billing.a.accountant,
                description="Training",
                quantity=Decimal(quantity),
                unit="h",
                unit_price=Decimal("60.00"),
            )

    with django_assert_max_num_queries(len(one)):
        assert api.get(f"{API}/invoices/").json()["count"] == 6
