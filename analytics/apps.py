"""Analytics plugs itself into the portal here; the portal never imports analytics.

ready() registers, in this order of dependency:
- the Celery tasks of each concern (importing a tasks module registers its tasks
  with the portal's Celery app) and analytics' beat entries (analytics/schedule.py);
- the quota table of the application page's usage panel, and the traffic count the
  declarative configuration's --prune checks before retiring a version (portal/core/extensions.py).
Pages and the usage API are wired by analytics/urls.py and analytics/api_urls.py.
"""

from __future__ import annotations

from datetime import datetime

from django.apps import AppConfig

TASK_MODULES = (
    "analytics.ingest.tasks",
    "analytics.billing.tasks",
    "analytics.quotas.tasks",
    "analytics.reports.tasks",
    "analytics.monitoring.tasks",
)


def application_quotas(application_id: int) -> dict[str, object]:
    from analytics.quotas.selectors import quota_usage

    return {"quotas": quota_usage(application_id=application_id)}


def version_requests_since(api_id: int, label: str, since: datetime) -> int:
    from analytics.reports.selectors import version_requests_since as requests_since

    return requests_since(api_id=api_id, version=label, since=since)


class AnalyticsConfig(AppConfig):
    name = "analytics"
    label = "analytics"

    def ready(self) -> None:
        # Imported here, not at module top: apps.py is loaded before the models are.
        from importlib import import_module

        from analytics.schedule import BEAT_SCHEDULE
        from portal.celery import app
        from portal.core.extensions import application_usage_register, version_traffic_register

        for module in TASK_MODULES:
            import_module(module)
        # Settings may override an entry by name (CELERY_BEAT_SCHEDULE).
        for name, entry in BEAT_SCHEDULE.items():
            app.conf.beat_schedule.setdefault(name, entry)
        application_usage_register(application_quotas)
        version_traffic_register(version_requests_since)
