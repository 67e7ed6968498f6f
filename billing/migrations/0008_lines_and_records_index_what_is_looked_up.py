"""Index only what is looked up. A billing run writes two rows per booking, and each
index costs it its share of writes (two thirds of the run's WAL were b-tree inserts;
bench/billing.py):
- a usage record's consumable use and a line's funding allocation are set on few
  rows: indexed (unique, for the allocation) only where set;
- records and lines are never looked up by booking: no index.

On SQLite, altering billing_invoiceline rebuilds the table, which drops the triggers
that guard issued invoices' lines (migration 0002): they are created again after
it, and before it when migrating backwards."""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

guard = import_module("billing.migrations.0002_immutable_issued_invoices")

LINE_TRIGGERS = [sql for sql in guard.SQLITE if "ON billing_invoiceline" in sql]
DROP_LINE_TRIGGERS = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in guard.SQLITE_TRIGGERS
    if name.startswith("billing_invoiceline_")
]


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_usagerecord_platform_no_own_index"),
        ("booking", "0008_email_preferences"),
        ("core", "0002_idempotentrequest"),
        ("equipment", "0004_platform_reminder_hours"),
    ]

    operations = [
        # Backwards, the rebuilds below drop the triggers first: put them back last.
        guard.RunSQLPerVendor(
            forward={"postgresql": [], "sqlite": []},
            backward={"postgresql": [], "sqlite": LINE_TRIGGERS},
        ),
        migrations.AlterField(
            model_name="invoiceline",
            name="allocation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="billing.fundingallocation",
            ),
        ),
        migrations.AlterField(
            model_name="invoiceline",
            name="booking",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="booking.booking",
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="booking",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="booking.booking",
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="consumable_use",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="billing.consumableuse",
            ),
        ),
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(
                condition=models.Q(("consumable_use__isnull", False)),
                fields=["consumable_use"],
                name="usagerecord_consumable_use",
            ),
        ),
        migrations.AddConstraint(
            model_name="invoiceline",
            constraint=models.UniqueConstraint(
                condition=models.Q(("allocation__isnull", False)),
                fields=("allocation",),
                name="invoiceline_one_per_allocation",
                violation_error_message="This funding allocation already has its line.",
            ),
        ),
        guard.RunSQLPerVendor(
            forward={"postgresql": [], "sqlite": LINE_TRIGGERS},
            backward={"postgresql": [], "sqlite": DROP_LINE_TRIGGERS},
        ),
    ]
