"""Sign-up, email verification, login, profile, organizations and invitations."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts import services
from portal.accounts.forms import (
    EmailForm,
    InvitationForm,
    LoginForm,
    OrganizationForm,
    ProfileForm,
    RoleForm,
    SignupForm,
)
from portal.accounts.models import Invitation, Membership, Organization, User
from portal.accounts.selectors import home_url_for, organizations_for
from portal.core.errors import ApplicationError, NotAllowed
from portal.core.throttle import client_ip, throttle_allows
from portal.core.web import AuthenticatedHttpRequest, base_url, form_add_error

TOO_MANY = "Too many attempts. Wait a while and try again."


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if not throttle_allows("signup", client_ip(request)):
            form.add_error(None, TOO_MANY)
            status = 429
        else:
            try:
                user = services.user_signup(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    organization_name=form.cleaned_data["organization_name"],
                    base_url=base_url(request),
                )
            except ApplicationError as exc:
                form_add_error(form, exc)
            else:
                return render(request, "accounts/signup_done.html", {"email": user.email})
    return render(request, "accounts/signup.html", {"form": form}, status=status)


@require_http_methods(["GET"])
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    try:
        services.email_verify(token=token)
    except ApplicationError as exc:
        # 200, not 400: Django logs every 4xx response with its path, and this path is the token.
        return render(request, "accounts/verify_failed.html", {"message": exc.message})
    messages.success(request, "Your email address is confirmed. Welcome to Tollway!")
    return redirect("dashboard" if request.user.is_authenticated else "login")


@require_http_methods(["GET", "POST"])
def email_verify_resend(request: HttpRequest) -> HttpResponse:
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not throttle_allows("signup", client_ip(request)):
            form.add_error(None, TOO_MANY)
            return render(request, "accounts/verify_resend.html", {"form": form}, status=429)
        user = User.objects.filter(email__iexact=form.cleaned_data["email"], email_verified=False).first()
        if user is not None:
            services.email_verification_send(user=user, base_url=base_url(request))
        # The same answer whether or not the address is registered: no account probing.
        messages.success(request, "If that address has an unconfirmed account, a new link is on its way.")
        return redirect("login")
    return render(request, "accounts/verify_resend.html", {"form": form})


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return home_url_for(self.request.user)  # finance lands on the billing report

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        email = str(request.POST.get("username", "")).strip().lower()[:254]
        allowed = throttle_allows("login", client_ip(request)) and throttle_allows("login", f"email:{email}")
        if not allowed:
            form = self.get_form()
            form.is_bound = False  # do not run authenticate(): that is what we are limiting
            response = self.render_to_response(self.get_context_data(form=form, throttled=TOO_MANY))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm(request.POST or None, initial={"first_name": user.first_name, "last_name": user.last_name})
    if request.method == "POST" and form.is_valid():
        services.user_profile_update(
            user=user, first_name=form.cleaned_data["first_name"], last_name=form.cleaned_data["last_name"]
        )
        messages.success(request, "Profile saved.")
        return redirect("profile")
    memberships = Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")
    return render(request, "accounts/profile.html", {"form": form, "memberships": memberships})


# --- organizations ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def organization_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, f"Organization “{organization.name}” created. You are its owner.")
            return redirect("organization-detail", slug=organization.slug)
    return render(request, "accounts/organization_form.html", {"form": form})


def _organization_or_404(request: AuthenticatedHttpRequest, slug: str) -> Organization:
    return get_object_or_404(organizations_for(request.user), slug=slug)


@login_required
@require_http_methods(["GET"])
def organization_detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    organization = _organization_or_404(request, slug)
    return _organization_page(request, organization)


def _organization_page(
    request: AuthenticatedHttpRequest,
    organization: Organization,
    invite_form: InvitationForm | None = None,
    status: int = 200,
) -> HttpResponse:
    role = services.membership_role(organization=organization, user=request.user)
    members = organization.memberships.select_related("user").order_by("user__email")
    invitations = Invitation.objects.filter(organization=organization, accepted_at=None).order_by("-created_at")
    return render(
        request,
        "accounts/organization_detail.html",
        {
            "organization": organization,
            "role": role,
            "can_manage": role in services.MANAGER_ROLES,
            "members": [(m, RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")) for m in members],
            "invitations": invitations,
            "invite_form": invite_form or InvitationForm(),
            "my_membership": next((m for m in members if m.user_id == request.user.pk), None),
        },
        status=status,
    )


@login_required
@require_POST
def organization_invite(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    organization = _organization_or_404(request, slug)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                organization=organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
                base_url=base_url(request),
            )
        except NotAllowed as exc:
            # Members see no invitation form to show it on.
            messages.error(request, exc.message)
            return redirect("organization-detail", slug=organization.slug)
        except ApplicationError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("organization-detail", slug=organization.slug)
    return _organization_page(request, organization, invite_form=form, status=400)


def _membership_or_404(request: AuthenticatedHttpRequest, slug: str, membership_id: int) -> Membership:
    organization = _organization_or_404(request, slug)
    return get_object_or_404(Membership.objects.select_related("user", "organization"), pk=membership_id,
                             organization=organization)


@login_required
@require_POST
def membership_role_change(request: AuthenticatedHttpRequest, slug: str, membership_id: int) -> HttpResponse:
    membership = _membership_or_404(request, slug, membership_id)
    form = RoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
    else:
        try:
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect("organization-detail", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def membership_remove(request: AuthenticatedHttpRequest, slug: str, membership_id: int) -> HttpResponse:
    """Remove a member, or leave when it is your own membership. GET asks to confirm."""
    membership = _membership_or_404(request, slug, membership_id)
    leaving = membership.user_id == request.user.pk
    if request.method == "POST":
        try:
            services.membership_remove(membership=membership, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("organization-detail", slug=slug)
        if leaving:
            messages.success(request, f"You left {membership.organization.name}.")
            return redirect("profile")
        messages.success(request, f"{membership.user.email} was removed from {membership.organization.name}.")
        return redirect("organization-detail", slug=slug)
    return render(request, "accounts/membership_confirm_remove.html", {"membership": membership, "leaving": leaving})


@login_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ApplicationError as exc:
            # 200, not 400: Django logs every 4xx response with its path, and this path is the token.
            return render(request, "accounts/invitation_accept.html", {"error": exc.message})
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("organization-detail", slug=membership.organization.slug)
    return render(request, "accounts/invitation_accept.html", {})
