"""On PostgreSQL: TRUNCATE is refused on every ledger table (a statement trigger: row triggers
never see a TRUNCATE, nor the tables it cascades to), the log's state only grows, and a
verification's verdict, once recorded, is final. These bind every role, the owner included;
the runtime role has no TRUNCATE, UPDATE or DELETE privilege on these tables in the first
place (`manage.py setup_db_roles`). SQLite, the embedded default, relies on the application."""
from django.db import migrations

APPEND_ONLY = ("provenance_ledgerentry", "provenance_ledgernode", "provenance_treehead", "provenance_provenancerecord")
GUARDED = APPEND_ONLY + ("provenance_ledgerstate", "provenance_ledgerverification")

STATE_FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_ledger_state_grows() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the ledger state is never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.size <= OLD.size THEN
        RAISE EXCEPTION 'the ledger only grows: size % to % refused', OLD.size, NEW.size
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

VERDICT_FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_verification_verdict_final() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger verifications are kept: DELETE refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.ok IS NOT NULL OR NEW.id IS DISTINCT FROM OLD.id OR NEW.started_at IS DISTINCT FROM OLD.started_at
            OR NEW.requested_by IS DISTINCT FROM OLD.requested_by THEN
        RAISE EXCEPTION 'a ledger verification''s verdict is final once recorded'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run(STATE_FUNCTION, params=None)
    run(VERDICT_FUNCTION, params=None)
    run("CREATE TRIGGER provenance_ledgerstate_grows BEFORE UPDATE OR DELETE ON provenance_ledgerstate "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_ledger_state_grows()")
    run("CREATE TRIGGER provenance_ledgerverification_final BEFORE UPDATE OR DELETE ON provenance_ledgerverification "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_verification_verdict_final()")
    for table in GUARDED:  # clearstem_append_only() comes from 0002 and names TG_OP and the table
        run(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION clearstem_append_only()")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    for table in GUARDED:
        run(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    run("DROP TRIGGER IF EXISTS provenance_ledgerverification_final ON provenance_ledgerverification")
    run("DROP TRIGGER IF EXISTS provenance_ledgerstate_grows ON provenance_ledgerstate")
    run("DROP FUNCTION IF EXISTS clearstem_verification_verdict_final()")
    run("DROP FUNCTION IF EXISTS clearstem_ledger_state_grows()")


class Migration(migrations.Migration):
    dependencies = [("provenance", "0004_ledger_verification")]
    operations = [migrations.RunPython(install, uninstall)]
