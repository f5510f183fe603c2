"""The log's stored Merkle tree, its signed checkpoints and the vault index of its entries.

An existing log is backfilled: every perfect subtree hash of its leaves, and a reference for every
entry naming a vault. On PostgreSQL tree nodes are append-only, like the log entries themselves.
"""

import hashlib
import json

import django.utils.timezone
from django.db import migrations, models


FORWARD = """
CREATE OR REPLACE FUNCTION directory_treenode_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'directory_treenode is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER directory_treenode_append_only
    BEFORE UPDATE OR DELETE ON directory_treenode
    FOR EACH ROW EXECUTE FUNCTION directory_treenode_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS directory_treenode_append_only ON directory_treenode;
DROP FUNCTION IF EXISTS directory_treenode_append_only();
"""


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


def backfill(apps, schema_editor):
    """Build the tree and the vault index of an existing log, streaming its entries in order."""
    LogEntry = apps.get_model("registry", "LogEntry")
    TreeNode = apps.get_model("directory", "TreeNode")
    VaultLogRef = apps.get_model("directory", "VaultLogRef")
    stack, nodes, refs = [], [], []
    rows = LogEntry.objects.order_by("sequence").values_list("sequence", "leaf_hash", "body")
    for sequence, digest, body in rows.iterator(chunk_size=2000):
        node = (0, sequence, bytes(digest))
        nodes.append(TreeNode(level=0, index=sequence, hash=node[2]))
        while stack and stack[-1][0] == node[0]:
            left = stack.pop()
            merged = hashlib.sha256(b"\x01" + left[2] + node[2]).digest()
            node = (node[0] + 1, node[1] >> 1, merged)
            nodes.append(TreeNode(level=node[0], index=node[1], hash=merged))
        stack.append(node)
        vault = json.loads(bytes(body)).get("vault")
        if isinstance(vault, str):
            refs.append(VaultLogRef(number=vault, sequence=sequence))
        if len(nodes) >= 5000:
            TreeNode.objects.bulk_create(nodes)
            VaultLogRef.objects.bulk_create(refs)
            nodes, refs = [], []
    TreeNode.objects.bulk_create(nodes)
    VaultLogRef.objects.bulk_create(refs)


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0001_routing_plans'),
        ('registry', '0002_log_append_only'),
    ]

    operations = [
        migrations.CreateModel(
            name='VaultLogRef',
            fields=[
                ('pk', models.CompositePrimaryKey('number', 'sequence', blank=True, editable=False, primary_key=True, serialize=False)),
                ('number', models.CharField(max_length=20)),
                ('sequence', models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('size', models.BigIntegerField()),
                ('root_hash', models.BinaryField(max_length=32)),
                ('note', models.TextField(help_text='The signed note, exactly as served')),
                ('key_name', models.CharField(max_length=200)),
                ('key_hash', models.CharField(help_text='Hex of the 4-byte signed-note key hash', max_length=8)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['-size', '-id'],
                'indexes': [models.Index(fields=['-size', '-id'], name='directory_checkpoint_latest')],
                'constraints': [models.CheckConstraint(condition=models.Q(('size__gte', 0)), name='directory_checkpoint_size_non_negative')],
            },
        ),
        migrations.CreateModel(
            name='TreeNode',
            fields=[
                ('pk', models.CompositePrimaryKey('level', 'index', blank=True, editable=False, primary_key=True, serialize=False)),
                ('level', models.PositiveSmallIntegerField()),
                ('index', models.BigIntegerField()),
                ('hash', models.BinaryField(max_length=32)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('index__gte', 0), ('level__lte', 63)), name='directory_treenode_in_range')],
            },
        ),
        migrations.RunPython(install_trigger, remove_trigger),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
