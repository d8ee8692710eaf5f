from django import template

from wuyiqu.lib import dates

register = template.Library()


@register.filter
def age(resident):
    """A resident's whole years of age today (Asia/Shanghai), read from their encrypted number (the
    register keeps no birth date); empty when it cannot be read."""
    try:
        return resident.age_on(dates.today())
    except Exception:  # an old key gone, a number stored before validation: no age rather than no page
        return ""


@register.filter
def percent(done, total):
    """``done`` as a whole percentage of ``total`` (0 when there is no total yet)."""
    try:
        return min(100, int(done * 100 / total)) if total else 0
    except (TypeError, ValueError):
        return 0


@register.inclusion_tag("web/_breadcrumb.html", takes_context=True)
def unit_breadcrumb(context, unit, current: str = ""):
    """The breadcrumb of a page about ``unit``: its ancestors (clickable inside the person's scope), the
    unit itself (clickable: its page) and ``current``, the page's own name. One query."""
    from wuyiqu.units.selectors import breadcrumb_for

    trail = [*breadcrumb_for(context["request"].user, unit), {"unit": unit, "clickable": True}]
    return {"breadcrumb": trail, "current": current}
