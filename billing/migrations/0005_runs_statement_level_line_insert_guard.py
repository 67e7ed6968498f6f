"""Inserting lines into an issued invoice is refused once per statement, not per row
(PostgreSQL). Migration 0002's row trigger ran a PL/pgSQL function and a query for
every inserted line: a third of the time a billing run spent writing its lines.
An AFTER INSERT statement trigger sees all the rows a statement inserted (INSERT,
INSERT … SELECT, COPY) as a transition table and refuses them together with one
join; the error aborts the statement as before. UPDATE and DELETE keep 0002's row
trigger. SQLite has no statement triggers: its row trigger stays as it is."""

from importlib import import_module

from django.db import migrations

guard = import_module("billing.migrations.0002_immutable_issued_invoices")

MESSAGE = "issued invoices and their lines never change"

POSTGRES = f"""
DROP TRIGGER billing_invoiceline_immutable ON billing_invoiceline;
CREATE TRIGGER billing_invoiceline_immutable BEFORE UPDATE OR DELETE
    ON billing_invoiceline FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_line_change();

CREATE FUNCTION billing_refuse_lines_of_issued_invoices() RETURNS trigger AS $$
DECLARE
    found bigint;
BEGIN
    SELECT i.id INTO found FROM inserted_lines n JOIN billing_invoice i ON i.id = n.invoice_id
        WHERE i.status = 'issued' LIMIT 1;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION '{MESSAGE} (invoice %)', found USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_insert_immutable AFTER INSERT ON billing_invoiceline
    REFERENCING NEW TABLE AS inserted_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_lines_of_issued_invoices();
"""

POSTGRES_REVERSE = """
DROP TRIGGER billing_invoiceline_insert_immutable ON billing_invoiceline;
DROP FUNCTION billing_refuse_lines_of_issued_invoices();
DROP TRIGGER billing_invoiceline_immutable ON billing_invoiceline;
CREATE TRIGGER billing_invoiceline_immutable BEFORE INSERT OR UPDATE OR DELETE
    ON billing_invoiceline FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_line_change();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_documents_accounting_accounts")]

    operations = [
        guard.RunSQLPerVendor(
            forward={"postgresql": [POSTGRES], "sqlite": []},
            backward={"postgresql": [POSTGRES_REVERSE], "sqlite": []},
        )
    ]
