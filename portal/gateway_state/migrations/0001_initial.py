# PublishOutbox moved here from the keys app. The table keys.0002 created stays as it
# is (db_table "keys_publishoutbox"), so this only tells Django's state who owns it.

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('keys', '0002_publishoutbox'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='PublishOutbox',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(max_length=10)),
                        ('ref', models.CharField(max_length=80)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'ordering': ['id'],
                        'db_table': 'keys_publishoutbox',
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
