from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from portal.accounts.models import Role, User


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not only digits and not a common password.",
    )
    organization_name = forms.CharField(
        max_length=120,
        required=False,
        label="Organization name",
        help_text="Optional. Applications and keys belong to an organization; you can invite your team later.",
    )


class LoginForm(AuthenticationForm):
    """Email and password; an account must have verified its email first."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Email or password is not correct.",
        "unverified": "Confirm your email address first: open the link we emailed you.",
    }

    def clean_username(self) -> str:
        return str(self.cleaned_data.get("username", "")).strip().lower()

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        if not user.email_verified:
            raise forms.ValidationError(self.error_messages["unverified"], code="unverified")


class EmailForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120, label="Organization name")


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
