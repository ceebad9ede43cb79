"""REST API routes under /api/v1/. Add a resource with one more ``router.register`` line."""

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from portal.accounts.apis import InvitationAcceptViewSet, InvitationViewSet, MemberViewSet, OrganizationViewSet
from portal.audit.apis import AuditEventViewSet
from portal.catalog.apis import ApiProductViewSet, ApiVersionViewSet
from portal.core.api import api_not_found
from portal.keys.apis import ApiKeyViewSet, ApplicationViewSet
from portal.plans.apis import ApiPlanViewSet, OverrideViewSet, PlanViewSet, SubscriptionViewSet
from portal.webhooks.apis import WebhookEndpointViewSet

# Ids in nested prefixes are matched loosely and looked up in the view, so a
# malformed id answers the API's JSON 404 rather than Django's HTML one.
ID = r"(?P<{}>[^/]+)"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("apis", ApiProductViewSet, basename="api")
router.register(f"apis/{ID.format('pk')}/plans", ApiPlanViewSet, basename="api-plan")
router.register(f"apis/{ID.format('api_id')}/versions", ApiVersionViewSet, basename="api-version")
router.register("plans", PlanViewSet, basename="plan")
router.register("applications", ApplicationViewSet, basename="application")
router.register(f"applications/{ID.format('application_id')}/keys", ApiKeyViewSet, basename="application-key")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register(
    f"subscriptions/{ID.format('subscription_id')}/overrides", OverrideViewSet, basename="subscription-override"
)
router.register("organizations", OrganizationViewSet, basename="organization")
router.register(f"organizations/{ID.format('organization_id')}/members", MemberViewSet, basename="organization-member")
router.register(
    f"organizations/{ID.format('organization_id')}/invitations", InvitationViewSet, basename="organization-invitation"
)
router.register("invitations/accept", InvitationAcceptViewSet, basename="invitation-accept")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [*router.urls]

# Analytics: /api/v1/usage/ and /api/v1/usage/summary/ (plain views beside the router).
from django.urls import include, path  # noqa: E402

urlpatterns += [path("", include("analytics.api_urls"))]

# The declarative configuration, for operators: /api/v1/config/, diff/, sync/, schema/.
from portal.declarative.apis import ConfigDiffApi, ConfigDumpApi, ConfigSchemaApi, ConfigSyncApi  # noqa: E402

urlpatterns += [
    path("config/", ConfigDumpApi.as_view(), name="config-dump"),
    path("config/diff/", ConfigDiffApi.as_view(), name="config-diff"),
    path("config/sync/", ConfigSyncApi.as_view(), name="config-sync"),
    path("config/schema/", ConfigSchemaApi.as_view(), name="config-schema"),
]

# Keep last: any other path under /api/v1/ is a JSON 404 in the API's error shape.
urlpatterns += [re_path(r"^.*$", api_not_found)]
