import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("tollway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Apps built on the portal (analytics) register their own tasks and beat entries
# from their AppConfig.ready(); the portal does not import them.
app.autodiscover_tasks(["portal.keys", "portal.plans", "portal.gateway_state", "portal.webhooks"])
