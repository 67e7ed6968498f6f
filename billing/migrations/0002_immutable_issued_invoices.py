"""An issued invoice (or credit note) and its lines never change, even through
QuerySet.update(), raw SQL or another program: the database refuses UPDATE and
DELETE of issued documents and any write to their lines. Issuing itself is the
one UPDATE allowed, from draft to issued.

On SQLite, Django rebuilds a table to alter it, which drops its triggers: a
later migration altering billing_invoice or billing_invoiceline must create
them again (tests/billing/test_immutability.py would fail otherwise)."""

from django.db import migrations

MESSAGE = "issued invoices and their lines never change"

POSTGRES = f"""
CREATE FUNCTION billing_refuse_issued_invoice_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'issued' THEN
        RAISE EXCEPTION '{MESSAGE} (invoice %)', OLD.id USING ERRCODE = 'raise_exception';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_invoice_change();

CREATE FUNCTION billing_refuse_issued_line_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND EXISTS (
        SELECT 1 FROM billing_invoice WHERE id = OLD.invoice_id AND status = 'issued'
    ) THEN
        RAISE EXCEPTION '{MESSAGE} (line %)', OLD.id USING ERRCODE = 'raise_exception';
    END IF;
    IF TG_OP <> 'DELETE' AND EXISTS (
        SELECT 1 FROM billing_invoice WHERE id = NEW.invoice_id AND status = 'issued'
    ) THEN
        RAISE EXCEPTION '{MESSAGE} (line %)', NEW.id USING ERRCODE = 'raise_exception';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_immutable BEFORE INSERT OR UPDATE OR DELETE
    ON billing_invoiceline FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_line_change();
"""

POSTGRES_REVERSE = """
DROP TRIGGER billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION billing_refuse_issued_line_change();
DROP TRIGGER billing_invoice_immutable ON billing_invoice;
DROP FUNCTION billing_refuse_issued_invoice_change();
"""

ISSUED = "(SELECT status FROM billing_invoice WHERE id = {row}.invoice_id) = 'issued'"

SQLITE = [
    f"""CREATE TRIGGER billing_invoice_no_update BEFORE UPDATE ON billing_invoice
        FOR EACH ROW WHEN OLD.status = 'issued'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_invoice_no_delete BEFORE DELETE ON billing_invoice
        FOR EACH ROW WHEN OLD.status = 'issued'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_invoiceline_no_insert BEFORE INSERT ON billing_invoiceline
        FOR EACH ROW WHEN {ISSUED.format(row="NEW")}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_invoiceline_no_update BEFORE UPDATE ON billing_invoiceline
        FOR EACH ROW WHEN {ISSUED.format(row="OLD")} OR {ISSUED.format(row="NEW")}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER billing_invoiceline_no_delete BEFORE DELETE ON billing_invoiceline
        FOR EACH ROW WHEN {ISSUED.format(row="OLD")}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_TRIGGERS = [
    "billing_invoice_no_update",
    "billing_invoice_no_delete",
    "billing_invoiceline_no_insert",
    "billing_invoiceline_no_update",
    "billing_invoiceline_no_delete",
]


class RunSQLPerVendor(migrations.RunSQL):
    """RunSQL with one script per database vendor; an unknown vendor is an error,
    not a silently unguarded table."""

    def __init__(self, forward: dict, backward: dict):
        self.forward, self.backward = forward, backward
        super().__init__(sql="", reverse_sql="")

    def _run(self, scripts, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor not in scripts:
            raise RuntimeError(f"No guard of issued invoices written for {vendor}.")
        self._run_sql(schema_editor, scripts[vendor])

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(self.forward, schema_editor)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(self.backward, schema_editor)

    def deconstruct(self):
        return (self.__class__.__name__, [], {"forward": self.forward, "backward": self.backward})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        RunSQLPerVendor(
            forward={"postgresql": [POSTGRES], "sqlite": SQLITE},
            backward={
                "postgresql": [POSTGRES_REVERSE],
                "sqlite": [f"DROP TRIGGER {name}" for name in SQLITE_TRIGGERS],
            },
        )
    ]
