import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("tollway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["portal.keys", "portal.plans", "portal.gateway_state", "analytics"])


@app.on_after_configure.connect
def add_analytics_schedule(sender: Celery, **kwargs: object) -> None:
    # Analytics keeps its beat entries beside its tasks; settings may override one by name.
    from analytics.schedule import BEAT_SCHEDULE

    for name, entry in BEAT_SCHEDULE.items():
        sender.conf.beat_schedule.setdefault(name, entry)
