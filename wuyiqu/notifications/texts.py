"""The texts of notifications, by template id. A notification stores its zh-hans text as sent (the
inbox of a Chinese reader, the e-mail, the audit trail) and, when it was made from one of these
templates, the template id and its parameters, so that the inbox renders it again in the reader's
language. Parameters named below are translated at display (a title, a status, a criterion's
name, and the reasons the system wrote, given in their machine form); the others are shown as given
— names of units and people, dates, numbers, and the words of people (a reviewer's opinion, a
manual warning), which are quoted as written (DEVELOPERS.md, "Translations")."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

TEMPLATES: dict[str, str] = {
    "application.step": gettext_noop("待办：“%(unit)s”的%(title)s申请待%(status)s"),
    "application.returned": gettext_noop("您的“%(unit)s”%(title)s申请被%(step)s退回：%(opinion)s"),
    "application.rejected": gettext_noop("您的“%(unit)s”%(title)s申请未通过（%(step)s）：%(opinion)s"),
    "application.named": gettext_noop("“%(unit)s”已被命名为%(title)s，证书编号 %(number)s"),
    "application.signing_locked": gettext_noop("联名签名锁定：“%(unit)s”%(household)s多次验证失败，已锁定。"
                                               "如确为本户成员操作，请在申请页解除锁定；否则可能有人冒签。"),
    "supervision.withdrawn": gettext_noop("【摘牌】%(unit)s的%(title)s称号已于%(on)s摘牌：%(reason)s"),
    "supervision.warned": gettext_noop("【警示】%(unit)s未达“%(criterion)s”：%(detail)s；请于%(deadline)s前整改，逾期未整改将摘牌"),
    "supervision.manual_warning": gettext_noop("【警示】%(unit)s：%(detail)s；请于%(deadline)s前整改"),
    "supervision.rectified": gettext_noop("【整改完成】%(unit)s的警示（%(criterion)s）已整改，警示关闭"),
    "supervision.manual_expired": gettext_noop("【警示到期】%(unit)s的人工警示已到整改期限%(deadline)s，请核实整改情况并决定是否摘牌：%(detail)s"),
    "supervision.digest": gettext_noop("【监督】本次检查涉及您负责的单位 %(n)s 项摘牌、警示或整改变化，请逐一查看各单位的监督记录"),
    "units.reveal_limit": gettext_noop("【查看限制】%(who)s（%(username)s）一小时内查看完整身份证号和电话已达 %(n)s 次，已暂停其查看，请核实。"),
    "units.cross_scope_cap": gettext_noop("警示：账号“%(who)s”（%(scope)s）今天已 %(n)s 次导入其他辖区已登记的居民，超过每日上限 %(cap)s 次，"
                               "其后的此类导入已被拒绝。请核实是否在批量试探身份证号。"),
    "units.transfers_waiting": gettext_noop("待确认：%(n)s 项跨辖区迁入申请（居民已在其他辖区登记），请核实后同意或不同意"),
    "health.held_facts": gettext_noop("待确认：%(n)s 项外辖区提交的人员事实（核酸、病例或管控措施）涉及您辖区内已登记的居民，请核实后确认或作废"),
}


def _reason(text: str) -> str:
    """A stored reason given in its machine form (a criterion's detail, a withdrawal's reason:
    ``wuyiqu.standards.criteria.render``) in the active language; a person's words as written."""
    from wuyiqu.standards.criteria import shown

    return shown(text, text)


def _status(code: str) -> str:
    from wuyiqu.applications.models import ApplicationStatus

    return str(ApplicationStatus(code).label) if code in ApplicationStatus.values else code


# Parameters translated at display, by name.
TRANSLATED = {
    "title": gettext,       # 无疫楼栋 … (msgids, wuyiqu.web.i18n_strings)
    "criterion": gettext,   # a criterion's name (msgids, wuyiqu.standards.names)
    "status": _status,      # an application's status code
    "step": _status,
    "reason": _reason,      # a withdrawal's reason (machine form, or as written)
    "detail": _reason,      # a warning's detail (machine form, or a person's words)
}


def format_text(template: str, params: dict) -> str:
    """The template in the active language with its parameters (translated where named above)."""
    values = {k: (TRANSLATED[k](v) if k in TRANSLATED and isinstance(v, str) else v) for k, v in params.items()}
    return gettext(TEMPLATES[template]) % values


def stored_text(template: str, params: dict) -> str:
    """The zh-hans text stored on the row (and e-mailed), whatever language the actor uses."""
    with translation.override(settings.LANGUAGE_CODE):
        return format_text(template, params)


def render(notification) -> str:
    if notification.template in TEMPLATES:
        try:
            return format_text(notification.template, notification.params or {})
        except (KeyError, ValueError, TypeError):  # a row older than its template's parameters
            pass
    return notification.text
