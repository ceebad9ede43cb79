from __future__ import annotations

from django import forms


class QuotaAlertForm(forms.Form):
    percentages = forms.CharField(
        max_length=60, help_text="Comma-separated, e.g. 80, 100", label="Email me at these quota percentages"
    )

    def clean_percentages(self) -> list[int]:
        try:
            values = [int(p) for p in self.cleaned_data["percentages"].replace(" ", "").split(",") if p]
        except ValueError as exc:
            raise forms.ValidationError("Use whole numbers separated by commas.") from exc
        if not values:
            raise forms.ValidationError("Give at least one percentage.")
        return values
