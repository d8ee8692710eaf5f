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

# The names of the criteria of the bundled policy profile (data in standards/profiles/*.json), shown
# through gettext on the pages (a profile's own names not listed here are shown as written);
# tests/test_web_i18n.py checks that every name of the bundled profile is here.
CRITERION_NAMES = (
    gettext_noop("近8天无疫情"), gettext_noop("无密接人员"), gettext_noop("无居家隔离人员"), gettext_noop("无管控期中的返綦人员"),
    gettext_noop("无风险区、临时管控区"), gettext_noop("住户清楚、人员准确"), gettext_noop("规范佩戴口罩"),
    gettext_noop("定期参与核酸检测"), gettext_noop("以户为单位100%联名申请"), gettext_noop("出入口值守严格"),
    gettext_noop("清洁消毒、环境卫生"), gettext_noop("特殊人群底数清楚、需求明白"), gettext_noop("无次生事件"),
    gettext_noop("没有负面舆情"), gettext_noop("所有楼栋均为无疫楼栋"), gettext_noop("所辖社、小区、楼栋均获称号或达标"),
    gettext_noop("疫情防控宣传、知晓度认可度参与度"), gettext_noop("人工警示"),
)

# The rule texts of the bundled profile (the policy's words per level, shown on the self-assessment
# through gettext; tests/test_web_i18n.py checks that every one is here).
RULE_TEXTS = (
    gettext_noop("近8天以来楼栋内没有疫情发生"),
    gettext_noop("近8天以来小区内没有疫情发生"),
    gettext_noop("近8天以来社内没有疫情发生"),
    gettext_noop("近8天以来村（社区）内没有疫情发生"),
    gettext_noop("无密接人员"),
    gettext_noop("小区内无密接人员"),
    gettext_noop("社内无密接人员"),
    gettext_noop("村（社区）内无密接人员"),
    gettext_noop("无居家隔离人员"),
    gettext_noop("无管控期中的市外重点疫区来綦返綦人员"),
    gettext_noop("无风险区、临时管控区"),
    gettext_noop("楼栋内住户清楚，人员准确"),
    gettext_noop("小区内住户清楚，人员准确"),
    gettext_noop("社内住户清楚，人员准确"),
    gettext_noop("村（社区）内住户清楚，人员准确"),
    gettext_noop("规范佩戴口罩"),
    gettext_noop("定期参与核酸检测"),
    gettext_noop("以户为单位100%联名申请创建无疫楼栋"),
    gettext_noop("以户为单位100%联名申请创建无疫小区"),
    gettext_noop("以户为单位100%联名申请创建无疫社"),
    gettext_noop("所有村社、小区、楼栋以户为单位100%联名申请创建无疫村（社区）"),
    gettext_noop("楼栋出入口值守严格，车辆出入管理有序，能有效管理非本楼栋人员进出"),
    gettext_noop("小区出入口值守严格，车辆出入管理有序，有效管理非本小区人员进出"),
    gettext_noop("楼栋楼道、电梯、栏杆清洁消毒规范，生活垃圾分类处置，环境清洁卫生"),
    gettext_noop("小区各楼栋楼道、电梯、栏杆清洁消毒规范，生活垃圾分类处置得当，小区环境公共设施清洁卫生"),
    gettext_noop("社内环境卫生，公共区域有村民负责清扫，垃圾能定时清理，每周进行清洁消毒"),
    gettext_noop("村（社区）内环境干净、卫生，有村（居）民负责清扫，垃圾定时清理，每周进行清洁消毒"),
    gettext_noop("独居老人、孕产妇、残疾人、婴幼儿、血透病人、肿瘤患者、慢性病患者等特殊人群底数清楚、需求明白"),
    gettext_noop("小区独居老人、孕产妇、残疾人、婴幼儿、血透病人、肿瘤患者、慢性病患者等特殊人群底数清楚、需求明白"),
    gettext_noop("社内的独居老人、孕产妇、残疾人、婴幼儿、血透病人、肿瘤患者、慢性病患者等特殊人群底数清楚，需求明白"),
    gettext_noop("村（社区）内的独居老人、孕产妇、残疾人、婴幼儿、血透病人、肿瘤患者、慢性病患者等特殊人群底数清楚，需求明白"),
    gettext_noop("楼栋内无疫情防控而引发的斗殴、自寻短见、纵火、报复社会等次生事件发生"),
    gettext_noop("小区内无疫情防控而引发的斗殴、自寻短见、纵火、报复社会等次生事件发生"),
    gettext_noop("社内无疫情防控而引发的斗殴、自寻短见、纵火、报复社会等次生事件发生"),
    gettext_noop("村（社区）内无疫情防控而引发的斗殴、自寻短见、纵火、报复社会等次生事件发生"),
    gettext_noop("没有负面舆情"),
    gettext_noop("所有楼栋均为无疫楼栋"),
    gettext_noop("村（社区）内所有社、楼栋、小区均获无疫小区、无疫楼栋、无疫社称号，或均达到相应创建标准"),
    gettext_noop("村（社区）坚持开展疫情防控宣传，辖区群众健康知识素养较高，对疫情防控工作的知晓度、认可度、参与度保持在较高水平"),
)
