"""The state map (records and map nodes per log size) and checkpoints that bind its root.

Both tables are append-only on PostgreSQL, like the log. A registry that logged before entries
carried records migrates forward without rewriting any entry: one ``state.snapshot`` entry per
provider and per vault is appended, carrying its complete current record, and the map is built
from those entries like from any other.
"""

from django.db import migrations, models

TABLES = ("directory_staterecord", "directory_mapnode")

FORWARD = """
CREATE OR REPLACE FUNCTION directory_state_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION directory_state_append_only();
"""
    for table in TABLES
)

BACKWARD = "".join(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};\n" for t in TABLES) + (
    "DROP FUNCTION IF EXISTS directory_state_append_only();\n"
)


def install_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def remove_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


def snapshot(apps, schema_editor):
    """Append the records of every live provider and every vault (a no-op on a new registry).

    This one migration calls the services' append (the log, its tree and the map must be
    written exactly as every later append writes them): it reads the records through the
    current models, which is what this schema is.
    """
    Provider = apps.get_model("registry", "Provider")
    Vault = apps.get_model("registry", "Vault")
    if not Provider.objects.exists() and not Vault.objects.exists():
        return
    from django.utils import timezone

    from registry.models import Provider as CurrentProvider
    from registry.models import Vault as CurrentVault
    from registry.services.common import state_snapshot

    now = timezone.now()
    live = CurrentProvider.objects.exclude(status__in=["applied", "rejected"]).order_by("pk")
    state_snapshot(providers=list(live.values_list("pk", flat=True)), at=now)
    batch = []
    for vault in CurrentVault.objects.order_by("number").iterator(chunk_size=5000):
        batch.append(vault)
        if len(batch) == 10_000:
            state_snapshot(vaults=batch, at=now)
            batch = []
    state_snapshot(vaults=batch, at=now)


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0002_log_tree_checkpoints'),
        ('registry', '0003_transfers'),
    ]

    operations = [
        migrations.AddField(
            model_name='checkpoint',
            name='map_root',
            field=models.BinaryField(default=bytes(32), max_length=32),
        ),
        migrations.AddField(
            model_name='checkpoint',
            name='cosigners',
            field=models.JSONField(blank=True, default=list, help_text='Names of the witnesses'),
        ),
        migrations.CreateModel(
            name='StateRecord',
            fields=[
                ('pk', models.CompositePrimaryKey('key', 'version', blank=True, editable=False, primary_key=True, serialize=False)),
                ('key', models.CharField(max_length=60)),
                ('version', models.BigIntegerField()),
                ('record', models.BinaryField()),
            ],
        ),
        migrations.CreateModel(
            name='MapNode',
            fields=[
                ('pk', models.CompositePrimaryKey('node', 'version', blank=True, editable=False, primary_key=True, serialize=False)),
                ('node', models.BinaryField(max_length=34)),
                ('version', models.BigIntegerField()),
                ('hash', models.BinaryField(max_length=32)),
                ('leaf_path', models.BinaryField(max_length=32, null=True)),
                ('leaf_value', models.BinaryField(max_length=32, null=True)),
            ],
        ),
        migrations.RunPython(install_triggers, remove_triggers),
        migrations.RunPython(snapshot, migrations.RunPython.noop),
    ]
