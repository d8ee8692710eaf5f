from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from wuyiqu.lib.dates import today

from .models import IncidentType, InspectionItem

RESULT_CHOICES = (("", _("未检查")), ("pass", _("合格")), ("fail", _("不合格")))


class InspectionForm(forms.Form):
    inspected_on = forms.DateField(label=_("检查日期"), initial=today, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    inspector = forms.CharField(label=_("检查人"), max_length=50)
    note = forms.CharField(label=_("备注"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    evidence = forms.FileField(label=_("照片或文件（JPEG/PNG/PDF，10 MB 以内）"), required=False)

    def __init__(self, *args, items: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.items = items
        for item in items:
            self.fields[f"item_{item}"] = forms.ChoiceField(
                label=InspectionItem(item).label, choices=RESULT_CHOICES, required=False, widget=forms.RadioSelect)

    def item_fields(self):
        return [self[f"item_{item}"] for item in self.items]

    def results(self) -> dict[str, bool]:
        return {item: self.cleaned_data[f"item_{item}"] == "pass"
                for item in self.items if self.cleaned_data.get(f"item_{item}")}


class IncidentForm(forms.Form):
    occurred_on = forms.DateField(label=_("发生日期"), initial=today, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    incident_type = forms.ChoiceField(label=_("类型"), choices=IncidentType.choices)
    description = forms.CharField(label=_("经过"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    evidence = forms.FileField(label=_("照片或文件（JPEG/PNG/PDF，10 MB 以内）"), required=False)
