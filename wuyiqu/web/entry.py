"""The forms of "every fact by hand": what each one asks, as the columns of the import kind it feeds.

A form here renders no Django form and validates nothing itself: it collects the typed text under
the kind's column keys (``FieldSpec.key``), adds what the page fixes (the unit, the household, today,
the user as verifier) and hands the row to ``wuyiqu.imports.actions.do_record_row`` — so a refusal is
the one a file row gets, naming the same field. The specs only decide how a phone shows a column: a
date picker, a list to choose from, check boxes for the ledger's categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from wuyiqu.health.models import CaseType, ZoneType
from wuyiqu.units.models import SpecialTag


@dataclass(frozen=True)
class FieldSpec:
    key: str  # the import kind's column key
    label: str
    input: str = "text"  # text, date, select, textarea, check (one box: "是" or ""), tags (boxes)
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    maxlength: int | None = None
    today: bool = False  # a date field that starts at today
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EntrySpec:
    kind: str  # the import kind
    title: str
    fields: tuple[FieldSpec, ...]
    submit: str = _("保存")
    intro: str = ""


ID_NUMBER = FieldSpec("id_number", _("身份证号"), maxlength=18, help=_("18位，末位校验码须正确"),
                      attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})


def _choices(enum) -> tuple[tuple[str, str], ...]:
    return tuple((value, label) for value, label in enum.choices)


# Forms on a unit page (``/units/<code>/record/<kind>/``). The unit_code column, where a kind has
# one, is the page's unit.
UNIT_FORMS: dict[str, EntrySpec] = {
    "cases": EntrySpec("cases", _("登记阳性感染者"), (
        FieldSpec("id_number", _("身份证号"), required=False, maxlength=18,
                  help=_("感染者本人的身份证号；记在本单位上时留空"), attrs=ID_NUMBER.attrs),
        FieldSpec("on_unit", _("记在本单位上（无身份证号）"), input="check", required=False),
        FieldSpec("reported_on", _("报告日期"), input="date", today=True),
        FieldSpec("type", _("类型"), input="select", choices=_choices(CaseType)),
    )),
    "close-contacts": EntrySpec("close-contacts", _("登记密接人员"), (
        ID_NUMBER,
        FieldSpec("start_on", _("开始日期"), input="date", today=True),
        FieldSpec("end_on", _("结束日期"), input="date", help=_("管控的最后一天，可晚于今天")),
    )),
    "home-quarantines": EntrySpec("home-quarantines", _("登记居家隔离人员"), (
        ID_NUMBER,
        FieldSpec("start_on", _("开始日期"), input="date", today=True),
        FieldSpec("end_on", _("结束日期"), input="date", help=_("隔离的最后一天，可晚于今天")),
    )),
    "returnees": EntrySpec("returnees", _("登记来綦返綦人员"), (
        ID_NUMBER,
        FieldSpec("origin", _("来源地"), maxlength=100, help=_("如：某省某市某区")),
        FieldSpec("arrived_on", _("到达日期"), input="date", today=True),
        FieldSpec("control_until", _("管控截止日期"), input="date", help=_("管控的最后一天，可晚于今天")),
    )),
    "risk-zones": EntrySpec("risk-zones", _("划定风险区"), (
        FieldSpec("type", _("类型"), input="select", choices=_choices(ZoneType)),
        FieldSpec("start_on", _("开始日期"), input="date", today=True),
        FieldSpec("end_on", _("结束日期"), input="date", required=False, help=_("留空表示仍在管控")),
    ), intro=_("风险区划定在本单位上，对本单位、其下级和上级单位都计入。")),
    "households": EntrySpec("households", _("添加住户"), (
        FieldSpec("code", _("户编码"), maxlength=60, help=_("唯一，如 500110002015-C01-B01-101"),
                  attrs={"autocomplete": "off", "spellcheck": "false"}),
        FieldSpec("address", _("地址"), maxlength=200, help=_("如：龙湖花园1栋101室")),
        FieldSpec("verified_on", _("核实日期"), input="date", required=False, help=_("已核实住户清楚、人员准确时填写")),
        FieldSpec("registered_on", _("登记日期"), input="date", required=False,
                  help=_("该户自此日起计入；留空表示一直存在（补登）")),
    ), submit=_("添加")),
    "special-population": EntrySpec("special-population", _("登记特殊人群"), (
        ID_NUMBER,
        FieldSpec("tags", _("类别"), input="tags", choices=_choices(SpecialTag)),
        FieldSpec("needs", _("需求"), input="textarea", required=False, maxlength=2000),
        FieldSpec("helper", _("帮扶人"), required=False, maxlength=50),
        FieldSpec("reviewed_on", _("复核日期"), input="date", required=False, today=True),
        FieldSpec("registered_on", _("登记日期"), input="date", required=False,
                  help=_("该条台账自此日起计入；留空表示一直计入（已登记的日期保持不变）")),
    ), intro=_("需求和帮扶人可以以后补填；未填时台账不完整，标准会提示。")),
}

RESIDENT_FORM = EntrySpec("residents", _("添加居民"), (
    ID_NUMBER,
    FieldSpec("name", _("姓名"), maxlength=50, attrs={"autocomplete": "off"}),
    FieldSpec("phone", _("联系电话"), required=False, maxlength=20,
              help=_("11位手机号或固定电话，可空"), attrs={"inputmode": "tel", "autocomplete": "off"}),
    FieldSpec("exempt", _("卧床（免于核酸检测）"), input="check", required=False),
    FieldSpec("moved_on", _("迁入日期"), input="date", required=False,
              help=_("迁入本户的日期；留空表示一直居住于此（补登）")),
), submit=_("添加"))

LEDGER_EDIT_FORM = EntrySpec("special-population", _("编辑特殊人群台账"), tuple(
    f for f in UNIT_FORMS["special-population"].fields if f.key != "id_number"))

# Not an import row: taking a person off the register (units.actions.do_remove_resident).
REMOVE_FORM = EntrySpec("", _("移出登记"), (
    FieldSpec("reason", _("原因"), maxlength=200, help=_("如：登记有误、已去世、已迁往本区以外")),
), submit=_("移出登记"), intro=_("移出后此人不再计入任何单位；其病例仍计入发生时所在的单位，管控措施和核酸结果转为未匹配，"
                                 "若此人以后重新登记会自动关联。"))

# Not an import row either: a move into another household from a day (units.actions.do_move_resident,
# which the residents import's moves share their checks with).
MOVE_FORM = EntrySpec("", _("迁移居民"), (
    FieldSpec("household_code", _("迁入户编码"), maxlength=60, help=_("迁入的户的编码，见该户页面"),
              attrs={"autocomplete": "off", "spellcheck": "false", "list": "households-nearby"}),
    FieldSpec("moved_on", _("迁入日期"), input="date", today=True, help=_("到新户的第一天；原户计到前一天")),
), submit=_("迁移"))

# Which unit kinds show which unit form: households only on the units that hold them.
HOUSEHOLD_FORMS = ("households",)
