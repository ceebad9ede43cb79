"""Reads scoped to what a user may see. Everything a developer sees goes through these."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.urls import reverse

from portal.accounts.models import Membership, Organization, Role, User


def organizations_for(user: User | AnonymousUser) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_staff:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def organization_ids_for(user: User | AnonymousUser) -> list[int]:
    if not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


def is_operator(user: User | AnonymousUser) -> bool:
    """Operators are staff users."""
    return bool(user.is_authenticated and user.is_staff)


def is_finance(user: User | AnonymousUser) -> bool:
    """Members of the ``finance`` group, and operators: who may read revenue and reconciliation."""
    return bool(user.is_authenticated and (user.is_staff or user.groups.filter(name="finance").exists()))


def is_finance_staff(user: User | AnonymousUser) -> bool:
    """In the ``finance`` group without being an operator: the billing report is their home."""
    return bool(user.is_authenticated and not user.is_staff and user.groups.filter(name="finance").exists())


def home_url_for(user: User | AnonymousUser) -> str:
    """Where a user lands after logging in: finance on the billing report (analytics'
    page, reversed by name), everyone else on their dashboard."""
    return reverse("analytics:billing-report") if is_finance_staff(user) else reverse("dashboard")


def organization_ids() -> list[int]:
    """Every organization's id, in creation order."""
    return list(Organization.objects.order_by("pk").values_list("pk", flat=True))


def organization_admin_emails(*, organization_id: int) -> list[str]:
    """The owners' and admins' email addresses, sorted: who hears about the organization's applications."""
    return sorted(
        Membership.objects.filter(organization_id=organization_id, role__in=[Role.OWNER, Role.ADMIN]).values_list(
            "user__email", flat=True
        )
    )


def organizations_of_member(user: User) -> QuerySet[Organization]:
    """The organizations the user belongs to, by name, operators included: where they may
    create applications (operators reach the others in the admin)."""
    return Organization.objects.filter(memberships__user=user).order_by("name")


def organizations_all() -> QuerySet[Organization]:
    """Every organization, unscoped: only for what names the model (a schema, a form's
    placeholder), never for what a caller may see; that is organizations_for."""
    return Organization.objects.all()


def user_by_email(email: str) -> User | None:
    """The user who logs in with this address (emails are matched case-insensitively), or None."""
    return User.objects.filter(email__iexact=email.strip()).first()


def operator_emails() -> list[str]:
    """Every active operator's (staff user's) address, sorted: who hears about operational alerts."""
    return sorted(User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True))
