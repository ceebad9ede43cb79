from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db.models import QuerySet

from portal.plans.models import Plan

if TYPE_CHECKING:
    from portal.keys.models import Application


class PlanChoiceField(forms.ModelChoiceField[Plan]):
    def label_from_instance(self, obj: Plan) -> str:
        approval = " (needs approval)" if obj.requires_approval else ""
        return f"{obj.api.name} · {obj.name}{approval}"


class ApplicationChoiceField(forms.ModelChoiceField["Application"]):
    def label_from_instance(self, obj: Application) -> str:
        return f"{obj.name} ({obj.organization.name})"


# The choices depend on the caller, so each form takes them in __init__; the class-level
# querysets are empty placeholders. self.fields holds per-instance copies of these fields.


class SubscriptionForm(forms.Form):
    application = ApplicationChoiceField(queryset=None, empty_label=None)
    plan = PlanChoiceField(queryset=Plan.objects.none(), empty_label=None)

    def __init__(
        self, *args: Any, applications: QuerySet[Application], plans: QuerySet[Plan], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(ApplicationChoiceField, self.fields["application"]).queryset = applications
        cast(PlanChoiceField, self.fields["plan"]).queryset = plans


class ChangePlanForm(forms.Form):
    plan = PlanChoiceField(queryset=Plan.objects.none(), empty_label=None, label="New plan")

    def __init__(self, *args: Any, plans: QuerySet[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(PlanChoiceField, self.fields["plan"]).queryset = plans
