from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from wuyiqu.imports.registry import all_kinds

ALLOWED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods")


# The registry's own kinds first, in the order a new community loads them; then the others by name.
FIRST_KINDS = ("units", "households", "residents", "verifications", "special-population")


def kind_choices() -> list[tuple[str, str]]:
    """The importable kinds, as the imports registry knows them (name, translated label)."""
    kinds = all_kinds()
    order = [k for k in FIRST_KINDS if k in kinds] + [k for k in kinds if k not in FIRST_KINDS]
    return [(name, _(kinds[name].label)) for name in order]


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("导入类型"), choices=())
    file = forms.FileField(label=_("文件（Excel .xlsx/.xls、.ods、CSV 或 Unicode 文本）"))
    skip_invalid = forms.BooleanField(
        label=_("跳过有错误的行，导入其余的行"), required=False,
        help_text=_("不勾选时，只要有一行有错误，整个文件都不导入。"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = kind_choices()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if Path(upload.name).suffix.lower() not in ALLOWED_SUFFIXES:
            raise forms.ValidationError(_("只能上传 CSV、TSV/TXT、XLSX、XLS 或 ODS 文件"))
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("文件太大（%(size)s），上限为 %(limit)s")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(settings.IMPORT_MAX_UPLOAD_BYTES)}
            )
        if upload.size == 0:
            raise forms.ValidationError(_("文件是空的"))
        return upload
