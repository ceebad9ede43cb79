from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def create_finance_group(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Finance staff see the billing report; the group is looked up by this name.
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name="finance")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_finance_group, migrations.RunPython.noop)]
