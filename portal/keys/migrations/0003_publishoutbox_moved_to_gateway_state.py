# PublishOutbox now belongs to portal.gateway_state (its migration 0001 takes over the
# same table). State only: the table and its pending rows stay where they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('keys', '0002_publishoutbox'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='PublishOutbox')],
            database_operations=[],
        ),
    ]
