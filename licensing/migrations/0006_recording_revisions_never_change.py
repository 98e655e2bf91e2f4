"""A recording's earlier revisions are history: on PostgreSQL no role may rewrite a row (the
edit that replaced it is ledgered). Rows go only with their recording (removal of an unused
recording)."""
from django.db import migrations


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE TRIGGER licensing_recordingrevision_append_only BEFORE UPDATE ON licensing_recordingrevision "
        "FOR EACH ROW EXECUTE FUNCTION clearstem_append_only()"
    )


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS licensing_recordingrevision_append_only ON licensing_recordingrevision")


class Migration(migrations.Migration):
    dependencies = [("licensing", "0005_catalog_offers_and_recording_revisions"),
                    ("provenance", "0002_append_only_triggers")]
    operations = [migrations.RunPython(install, uninstall)]
