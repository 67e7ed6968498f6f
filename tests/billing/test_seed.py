from io import StringIO

from django.core.management import call_command

from billing.models import BillingSettings, Consumable, Tariff


def counts():
    return BillingSettings.objects.count(), Tariff.objects.count(), Consumable.objects.count()


def test_seed_demo_sets_up_billing_for_the_demo_platforms_once(db):
    call_command("seed_demo", stdout=StringIO())
    first = counts()
    call_command("seed_demo", stdout=StringIO())

    assert counts() == first
    assert first[0] == 2 and first[1] > 0 and first[2] == 6
    assert sorted(BillingSettings.objects.values_list("invoice_prefix", flat=True)) == [
        "ADLN",
        "COBL",
    ]
    for settings in BillingSettings.objects.all():
        settings.full_clean()  # valid SIRET and VAT numbers
