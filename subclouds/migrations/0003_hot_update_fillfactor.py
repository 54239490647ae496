from django.db import migrations

# Subcloud and endpoint rows are rewritten by every state change and the
# changed columns are not indexed: free space in each page lets PostgreSQL do
# heap-only (HOT) updates that skip every index write.
TABLES = ("subclouds_subcloud", "subclouds_endpointstatus")


class Migration(migrations.Migration):
    dependencies = [("subclouds", "0002_default_group")]
    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {t} SET (fillfactor = 70)" for t in TABLES],
            [f"ALTER TABLE {t} RESET (fillfactor)" for t in TABLES],
        )
    ]
