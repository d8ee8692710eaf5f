"""Who may do what on the web pages, beyond what the scope already decides."""

from __future__ import annotations

from wuyiqu.accounts.models import Role

# Who may import into the registry of a unit in their scope. Community staff keep the registry of their
# village/community (SPEC §1); street staff, the health commission (which holds the case and
# nucleic-acid data) and the command work above them and may import into any unit they oversee;
# administrators load data anywhere. Building heads, group leaders and property managers keep their
# lists right through the co-signature and household pages, not through bulk imports: an import can
# rewrite a whole building's register in one go, which is staff work.
IMPORT_ROLES = frozenset({
    Role.COMMUNITY_STAFF,
    Role.STREET_STAFF,
    Role.HEALTH_COMMISSION,
    Role.COMMAND,
    Role.ADMIN,
})


def can_import(user) -> bool:
    """True when ``user``'s role may start imports (the unit must still be in their scope)."""
    return user.is_authenticated and (user.role in IMPORT_ROLES or user.is_superuser)


# Who may record a fact by hand (issue 15: cases, measures, risk zones, households, residents, the
# ledger, verifications): the same people who may import it, since a form is one row of the same
# import (``wuyiqu.imports.actions.do_record_row``). Building heads, group leaders and property
# managers — volunteers — read their units and collect co-signatures; they record no facts.
RECORD_ROLES = IMPORT_ROLES


def can_record(user) -> bool:
    """True when ``user``'s role may record facts by hand (the unit must still be in their scope)."""
    return user.is_authenticated and (user.role in RECORD_ROLES or user.is_superuser)
