from django import template

from wuyiqu.lib import dates
from wuyiqu.lib.idcard import age_on

register = template.Library()


@register.filter
def age(birth_date):
    """Whole years of age today (Asia/Shanghai)."""
    return age_on(birth_date, dates.today()) if birth_date else ""


@register.filter
def percent(done, total):
    """``done`` as a whole percentage of ``total`` (0 when there is no total yet)."""
    try:
        return min(100, int(done * 100 / total)) if total else 0
    except (TypeError, ValueError):
        return 0
