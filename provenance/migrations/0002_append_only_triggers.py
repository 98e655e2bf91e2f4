"""On PostgreSQL, the ledger is append-only in the database itself: a trigger rejects UPDATE
and DELETE on ledger rows, signed tree heads and provenance records (SQLite, the embedded
default, relies on the application and on verify_ledger)."""
from django.db import migrations

TABLES = ("provenance_ledgerentry", "provenance_ledgernode", "provenance_treehead", "provenance_provenancerecord")

FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'clearstem ledger tables are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION clearstem_append_only()"
        )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS clearstem_append_only()")


class Migration(migrations.Migration):
    dependencies = [("provenance", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
