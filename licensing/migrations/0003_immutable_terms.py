"""On PostgreSQL, a version's terms cannot change once it leaves draft (amend instead), and
usage events are append-only: the database refuses, not only the application."""
from django.db import migrations

# frozen copy of licensing.models.TERM_FIELDS as of this migration
TERM_FIELDS = (
    "licensor_id", "licensee_org_id", "licensee_user_id", "open_to_verified", "version", "stems", "purposes",
    "commercial", "territories", "excluded_territories", "valid_from", "valid_until", "max_separations",
    "max_downloads", "max_separations_per_user", "max_downloads_per_user", "attribution", "revenue_share_pct",
)

FUNCTION = """
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


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    changed = " OR ".join(f"NEW.{col} IS DISTINCT FROM OLD.{col}" for col in TERM_FIELDS)
    schema_editor.execute(FUNCTION.format(changed=changed), params=None)
    schema_editor.execute(
        "CREATE TRIGGER licensing_licensegrant_terms BEFORE UPDATE OR DELETE ON licensing_licensegrant "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_grant_terms_immutable()"
    )
    schema_editor.execute(
        "CREATE TRIGGER licensing_usageevent_append_only BEFORE UPDATE OR DELETE ON licensing_usageevent "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_append_only()"
    )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS licensing_usageevent_append_only ON licensing_usageevent")
    schema_editor.execute("DROP TRIGGER IF EXISTS licensing_licensegrant_terms ON licensing_licensegrant")
    schema_editor.execute("DROP FUNCTION IF EXISTS clearstem_grant_terms_immutable()")


class Migration(migrations.Migration):
    dependencies = [("licensing", "0002_versions_requests_acts"), ("provenance", "0002_append_only_triggers")]
    operations = [migrations.RunPython(install, uninstall)]
