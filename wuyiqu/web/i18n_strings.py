"""Strings that the pages translate at run time but that are plain (untranslated) text where they are
defined: the titles of TITLE_BY_KIND and the labels of the import kinds. Listing them here lets
``makemessages`` put them into the catalogue; nothing imports this module."""

from django.utils.translation import gettext_noop

TITLES = (gettext_noop("无疫楼栋"), gettext_noop("无疫小区"), gettext_noop("无疫社"), gettext_noop("无疫村"), gettext_noop("无疫社区"), gettext_noop("无疫街道"))

IMPORT_KIND_LABELS = (
    gettext_noop("单位"), gettext_noop("住户"), gettext_noop("居民"), gettext_noop("住户核实"), gettext_noop("特殊人群台账"),
    gettext_noop("阳性感染者"), gettext_noop("密接人员"), gettext_noop("居家隔离人员"), gettext_noop("来綦返綦人员"), gettext_noop("风险区"), gettext_noop("核酸检测结果"),
    gettext_noop("检查记录"), gettext_noop("次生事件与负面舆情"), gettext_noop("知晓度调查"), gettext_noop("联名签名（纸质）"),
    gettext_noop("已命名称号"), gettext_noop("账号"),
)
