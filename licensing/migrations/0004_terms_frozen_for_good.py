"""On PostgreSQL, terms are frozen for good once a version leaves draft: it never returns to
draft (so draft → edit → active is no detour), its terms and identity never change, its
recordings never change once it is ledgered, and TRUNCATE is refused on grants, their
recordings and usage events. The application refuses the same (`LicenseGrant.save`), so SQLite,
the embedded default, holds the rule too."""
from django.db import migrations

# frozen copy of licensing.models.TERM_FIELDS as of this migration, and the version's identity
TERM_FIELDS = (
    "licensor_id", "licensee_org_id", "licensee_user_id", "open_to_verified", "version", "stems", "purposes",
    "commercial", "territories", "excluded_territories", "valid_from", "valid_until", "max_separations",
    "max_downloads", "max_separations_per_user", "max_downloads_per_user", "attribution", "revenue_share_pct",
)
IDENTITY_FIELDS = ("id", "family", "previous_id", "created_at")
GUARDED = ("licensing_licensegrant", "licensing_licensegrant_recordings", "licensing_usageevent")

GRANT_FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_grant_terms_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'license grants are never deleted (revoke them)' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'a license that left draft never returns to draft: amend to create a new version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'draft' AND ({changed}) THEN
        RAISE EXCEPTION 'license terms are immutable once active: amend to create a new version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# A grant's recordings are part of its terms. Django adds them right after creating a version
# and before ledgering it, so: no change once the version has left draft, no addition once the
# ledger has recorded it (the runtime role cannot delete ledger entries).
RECORDINGS_FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_grant_recordings_fixed() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (
            SELECT 1 FROM licensing_licensegrant g WHERE g.id = OLD.licensegrant_id AND g.status <> 'draft') THEN
        RAISE EXCEPTION 'license grants are never deleted, nor their recordings changed once out of draft: amend instead'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
            SELECT 1 FROM provenance_ledgerentry e WHERE e.subject = 'grant:' || NEW.licensegrant_id::text) THEN
        RAISE EXCEPTION 'a ledgered license''s recordings never change: amend to create a new version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# the function as 0003 installed it, for going back
PREVIOUS_GRANT_FUNCTION = """
CREATE OR REPLACE FUNCTION clearstem_grant_terms_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'license grants are never deleted (revoke them)' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'draft' AND ({changed}) THEN
        RAISE EXCEPTION 'license terms are immutable once active: amend to create a new version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def _changed(columns) -> str:
    return " OR ".join(f"NEW.{col} IS DISTINCT FROM OLD.{col}" for col in columns)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    run(GRANT_FUNCTION.format(changed=_changed(TERM_FIELDS + IDENTITY_FIELDS)), params=None)
    run(RECORDINGS_FUNCTION, params=None)
    run("CREATE TRIGGER licensing_licensegrant_recordings_fixed "
        "BEFORE INSERT OR UPDATE OR DELETE ON licensing_licensegrant_recordings "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_grant_recordings_fixed()")
    for table in GUARDED:  # clearstem_append_only() comes from provenance 0002
        run(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION clearstem_append_only()")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    run = schema_editor.execute
    for table in GUARDED:
        run(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    run("DROP TRIGGER IF EXISTS licensing_licensegrant_recordings_fixed ON licensing_licensegrant_recordings")
    run("DROP FUNCTION IF EXISTS clearstem_grant_recordings_fixed()")
    run(PREVIOUS_GRANT_FUNCTION.format(changed=_changed(TERM_FIELDS)), params=None)


class Migration(migrations.Migration):
    dependencies = [("licensing", "0003_immutable_terms"), ("provenance", "0005_truncate_and_state_guards")]
    operations = [migrations.RunPython(install, uninstall)]
