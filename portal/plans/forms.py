from __future__ import annotations

from typing import Any

from django import forms

from portal.keys.models import Application
from portal.plans.models import Plan


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        approval = " (needs approval)" if obj.requires_approval else ""
        return f"{obj.api.name} · {obj.name}{approval}"


class ApplicationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.organization.name})"


class SubscriptionForm(forms.Form):
    application = ApplicationChoiceField(queryset=Application.objects.none(), empty_label=None)
    plan = PlanChoiceField(queryset=Plan.objects.none(), empty_label=None)

    def __init__(self, *args: Any, applications: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = applications
        self.fields["plan"].queryset = plans


class ChangePlanForm(forms.Form):
    plan = PlanChoiceField(queryset=Plan.objects.none(), empty_label=None, label="New plan")

    def __init__(self, *args: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans
