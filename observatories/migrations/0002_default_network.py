"""Load the default facility network (observatories/data/default_network.json) with the loader the demo uses."""

from django.db import migrations


def load_default_network(apps, schema_editor):
    from observatories.network import network_load

    network_load(
        site_model=apps.get_model("observatories", "Site"),
        facility_model=apps.get_model("observatories", "Facility"),
        instrument_model=apps.get_model("observatories", "Instrument"),
    )


class Migration(migrations.Migration):
    dependencies = [("observatories", "0001_initial")]

    # Reversing leaves the rows: they may be referenced by then, and a re-run updates them in place.
    operations = [migrations.RunPython(load_default_network, migrations.RunPython.noop)]
