"""No two active bookings of one machine may hold overlapping periods.

PostgreSQL enforces it with an exclusion constraint (btree_gist gives `=` on
the machine id inside a GiST index). SQLite has no such constraint: there,
booking.services checks and inserts inside one IMMEDIATE transaction, which
SQLite runs one at a time."""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE booking_booking ADD CONSTRAINT booking_no_overlap
    EXCLUDE USING gist (machine_id WITH =, tstzrange(start, blocked_until, '[)') WITH &&)
    WHERE (status IN ('pending', 'confirmed'));
"""
DROP = "ALTER TABLE booking_booking DROP CONSTRAINT booking_no_overlap;"


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_initial")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
