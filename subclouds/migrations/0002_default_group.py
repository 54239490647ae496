from django.db import migrations


def create_default_group(apps, schema_editor):
    SubcloudGroup = apps.get_model("subclouds", "SubcloudGroup")
    SubcloudGroup.objects.update_or_create(
        id=1,
        defaults={"name": "Default", "description": "Default Subcloud Group", "update_apply_type": "parallel",
                  "max_parallel_subclouds": 2},
    )
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('subclouds_subcloudgroup', 'id'), "
            "GREATEST((SELECT MAX(id) FROM subclouds_subcloudgroup), 1))"
        )


class Migration(migrations.Migration):
    dependencies = [("subclouds", "0001_initial")]
    operations = [migrations.RunPython(create_default_group, migrations.RunPython.noop)]
