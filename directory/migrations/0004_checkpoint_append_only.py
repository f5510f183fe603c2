"""Signed checkpoints are never deleted, and only gain cosignature lines: a PostgreSQL trigger
refuses a DELETE, and an UPDATE that changes what was signed or removes a line of the note."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION directory_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.size <> OLD.size OR NEW.root_hash <> OLD.root_hash
        OR NEW.map_root <> OLD.map_root OR NEW.key_name <> OLD.key_name
        OR left(NEW.note, length(OLD.note)) <> OLD.note THEN
        RAISE EXCEPTION 'directory_checkpoint is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER directory_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON directory_checkpoint
    FOR EACH ROW EXECUTE FUNCTION directory_checkpoint_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS directory_checkpoint_append_only ON directory_checkpoint;
DROP FUNCTION IF EXISTS directory_checkpoint_append_only();
"""


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("directory", "0003_state_map")]

    operations = [migrations.RunPython(install_trigger, remove_trigger)]
