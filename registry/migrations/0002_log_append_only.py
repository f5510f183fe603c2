"""The log is append-only: on PostgreSQL a trigger refuses UPDATE and DELETE of its rows.

The head row is seeded here so the first append finds it.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION registry_logentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'registry_logentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_logentry_append_only
    BEFORE UPDATE OR DELETE ON registry_logentry
    FOR EACH ROW EXECUTE FUNCTION registry_logentry_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS registry_logentry_append_only ON registry_logentry;
DROP FUNCTION IF EXISTS registry_logentry_append_only();
"""


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # no %-interpolation: RAISE uses %


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


def seed_head(apps, schema_editor):
    apps.get_model("registry", "LogHead").objects.get_or_create(pk=1, defaults={"size": 0})


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RunPython(install_trigger, remove_trigger),
        migrations.RunPython(seed_head, migrations.RunPython.noop),
    ]
