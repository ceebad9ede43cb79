"""Sign-up, email verification, organizations, memberships and invitations."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from portal.accounts.models import Invitation, Membership, Organization, Role, User
from portal.audit.services import audit_record
from portal.core.errors import ApplicationError, Conflict, NotAllowed

EMAIL_VERIFY_SALT = "tollway.accounts.email-verify"
EMAIL_VERIFY_MAX_AGE = dt.timedelta(days=3)
INVITATION_LIFETIME = dt.timedelta(days=7)
MANAGER_ROLES = {Role.OWNER, Role.ADMIN}


def email_verification_token(user: User) -> str:
    # Signed with SECRET_KEY; binds the email so a changed address invalidates old links.
    return signing.dumps({"uid": user.pk, "email": user.email}, salt=EMAIL_VERIFY_SALT)


def email_verification_send(*, user: User, base_url: str) -> None:
    link = f"{base_url.rstrip('/')}/accounts/verify/{email_verification_token(user)}/"
    send_mail(
        subject="Verify your Tollway email address",
        message=f"Welcome to Tollway.\n\nConfirm your email address by opening this link:\n{link}\n\n"
        "The link is valid for 3 days. If you did not sign up, ignore this message.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


@transaction.atomic
def user_signup(*, email: str, password: str, base_url: str, organization_name: str = "") -> User:
    """Creates an inactive-until-verified developer with a personal organization."""
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("An account with this email already exists.", fields={"email": ["Already registered."]})
    user = User(email=email, email_verified=False)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError("Choose a stronger password.", fields={"password": list(exc.messages)}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists.", fields={"email": ["Already registered."]}) from exc
    organization_create(name=organization_name or f"{email.split('@')[0]}'s organization", owner=user)
    transaction.on_commit(lambda: email_verification_send(user=user, base_url=base_url))
    return user


def email_verify(*, token: str) -> User:
    try:
        data = signing.loads(token, salt=EMAIL_VERIFY_SALT, max_age=EMAIL_VERIFY_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ApplicationError("This verification link has expired; request a new one.") from exc
    except signing.BadSignature as exc:
        raise ApplicationError("This verification link is not valid.") from exc
    user = User.objects.filter(pk=data.get("uid"), email=data.get("email")).first()
    if user is None:
        raise ApplicationError("This verification link is not valid.")
    if not user.email_verified:
        user.email_verified = True
        user.save(update_fields=["email_verified"])
    return user


# --- organizations ------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    name = name.strip()
    if not name:
        raise ApplicationError("An organization needs a name.", fields={"name": ["This field is required."]})
    organization = Organization.objects.create(name=name[:120], slug=_unique_slug(name))
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    audit_record(actor=owner, action="organization.create", obj=organization, organization_id=organization.pk)
    return organization


def membership_role(*, organization: Organization, user: User | AnonymousUser) -> str | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True).first()
    )


def _require_manager(organization: Organization, actor: User) -> str:
    role = membership_role(organization=organization, user=actor)
    if role is None or role not in MANAGER_ROLES:
        raise NotAllowed("Only the organization's owners and admins can do this.")
    return role


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: User) -> Membership:
    actor_role = _require_manager(membership.organization, actor)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", fields={"role": [f"One of {', '.join(Role.values)}."]})
    if Role.OWNER in {role, membership.role} and actor_role != Role.OWNER:
        raise NotAllowed("Only an owner can grant or take away ownership.")
    if membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_another_owner(membership)
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="membership.change_role",
        obj=membership,
        before=before,
        after={"role": role},
        organization_id=membership.organization_id,
    )
    return membership


def _ensure_another_owner(membership: Membership) -> None:
    owners = Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise Conflict("An organization must keep at least one owner.")


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    """Remove a member (owners/admins), or leave (anyone, for themselves)."""
    if membership.user_id != actor.pk:
        actor_role = _require_manager(membership.organization, actor)
        if membership.role == Role.OWNER and actor_role != Role.OWNER:
            raise NotAllowed("Only an owner can remove an owner.")
    if membership.role == Role.OWNER:
        _ensure_another_owner(membership)
    audit_record(
        actor=actor,
        action="membership.remove",
        obj=membership,
        before={"user": membership.user.email, "role": membership.role},
        organization_id=membership.organization_id,
    )
    membership.delete()


def invitation_token_new() -> str:
    """The one place invitation tokens are made (the secret scan records what it returns)."""
    return secrets.token_urlsafe(32)


def _invitation_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, actor: User, base_url: str
) -> Invitation:
    actor_role = _require_manager(organization, actor)
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise NotAllowed("Only an owner can invite an owner.")
    if role not in Role.values:
        raise ApplicationError("Unknown role.", fields={"role": [f"One of {', '.join(Role.values)}."]})
    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict("This person is already a member.", fields={"email": ["Already a member."]})
    token = invitation_token_new()
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=_invitation_hash(token),
        invited_by=actor,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    audit_record(
        actor=actor,
        action="invitation.create",
        obj=invitation,
        after={"email": email, "role": role},
        organization_id=organization.pk,
    )
    link = f"{base_url.rstrip('/')}/accounts/invitations/{token}/"
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You are invited to {organization.name} on Tollway",
            message=f"{actor.email} invited you to join {organization.name} as {role}.\n\nAccept: {link}\n"
            "The invitation is valid for 7 days.",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update().filter(token_hash=_invitation_hash(token), accepted_at=None).first()
    )
    if invitation is None or invitation.expires_at <= timezone.now():
        raise ApplicationError("This invitation is not valid or has expired.")
    if invitation.email.lower() != user.email.lower():
        raise NotAllowed("This invitation was sent to another email address.")
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(
        actor=user,
        action="invitation.accept",
        obj=membership,
        after={"role": membership.role},
        organization_id=invitation.organization_id,
    )
    return membership


@transaction.atomic
def user_profile_update(*, user: User, first_name: str, last_name: str) -> User:
    user.first_name = first_name.strip()[:150]
    user.last_name = last_name.strip()[:150]
    user.save(update_fields=["first_name", "last_name"])
    return user
