"""What a page says after a change: which units the re-check of the named chain looked at, and what
it did (``wuyiqu.supervision.services.recheck_after_facts``)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from wuyiqu.units.models import Unit


def _names(codes: set[str]) -> dict[str, str]:
    # display_name: 文龙社区, not 文龙社区居民委员会 (the committee's full name).
    return {code: Unit(name=name).display_name
            for code, name in Unit.objects.filter(code__in=codes).values_list("code", "name")} if codes else {}


def rechecked_text(outcomes) -> str:
    """One sentence per re-check in ``outcomes`` (a list of Outcome, or one; None: nothing written):
    the chain of each unit the change bears on, from the unit up ("1栋 › 龙湖花园 › 文龙社区 …"), and
    whether a named unit in it was judged, withdrawn or warned. Two queries per outcome at most."""
    if outcomes is None:
        return ""
    if not isinstance(outcomes, list | tuple):
        outcomes = [outcomes]
    return " ".join(filter(None, (_describe_one(out) for out in outcomes)))


def _describe_one(out) -> str:
    if not out.units:
        return _("未涉及本辖区已登记的单位，无需复核称号。")
    paths = list(Unit.objects.filter(pk__in=out.units).values_list("path", "pk"))
    codes = {c for path, _pk in paths for c in path.strip("/").split("/")}
    names = _names(codes | set(out.checked) | set(out.withdrawn))
    chains = []
    for path, pk in sorted(paths):
        chain = " › ".join(names.get(c, c) for c in reversed(path.strip("/").split("/")))
        chains.append(_("%(chain)s（及其下级单位）") % {"chain": chain} if pk in out.subtrees else chain)
    text = _("已复核：%(chains)s。") % {"chains": "；".join(chains)}
    if not out.checked:
        return text + _("其中没有现行称号，无需调整。")
    parts = [_("有称号的%(units)s已重新评定") % {"units": "、".join(names.get(c, c) for c in out.checked)}]
    if out.withdrawn:
        parts.append(_("摘牌：%(units)s") % {"units": "、".join(names.get(c, c) for c in out.withdrawn)})
    if out.opened:
        parts.append(ngettext("新发警示 %(n)d 条", "新发警示 %(n)d 条", out.opened) % {"n": out.opened})
    if out.rectified:
        parts.append(ngettext("%(n)d 条警示已整改", "%(n)d 条警示已整改", out.rectified) % {"n": out.rectified})
    if not (out.withdrawn or out.opened or out.rectified):
        parts.append(_("称号均保持"))
    return text + "；".join(parts) + "。"
