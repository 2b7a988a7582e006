"""Admin for agents, personas and the cap-change audit trail.

Persona files are the truth: every persona field is read-only here except the budget,
which is saved through ``personas.services.write_budget`` (the one writer of persona
files). Spend (gauges, charts, columns) is added by ``budgets.admin``, which subclasses
these classes: ``personas`` never imports ``budgets``.

The modules: ``display`` (how caps and changes read), ``agent`` (``AgentAdmin`` with its
personas inline), ``budget_form`` (the budget form), ``audit`` (``BudgetChangeAdmin``)
and ``persona`` (``PersonaAdmin``). Importing this package registers the three.
"""

from __future__ import annotations

from personas.admin.agent import AgentAdmin, PersonaInline
from personas.admin.audit import BudgetChangeAdmin
from personas.admin.budget_form import (
    BUDGET_KEYS,
    CAP_NOTES,
    EMPTY_VS_ZERO,
    NO_CAP,
    TIMEZONES,
    PersonaBudgetForm,
    UsdField,
    UsdInput,
    cap_note,
    conflict_rows,
    fresh_persona,
    usd_initial,
)
from personas.admin.display import (
    CAP_FIELDS,
    ReadOnlyAdmin,
    ReadOnlyInlineMixin,
    budget_diff,
    caps_summary,
    usd_text,
)
from personas.admin.persona import PersonaAdmin

__all__ = [
    "BUDGET_KEYS",
    "CAP_FIELDS",
    "CAP_NOTES",
    "EMPTY_VS_ZERO",
    "NO_CAP",
    "TIMEZONES",
    "AgentAdmin",
    "BudgetChangeAdmin",
    "PersonaAdmin",
    "PersonaBudgetForm",
    "PersonaInline",
    "ReadOnlyAdmin",
    "ReadOnlyInlineMixin",
    "UsdField",
    "UsdInput",
    "budget_diff",
    "cap_note",
    "caps_summary",
    "conflict_rows",
    "fresh_persona",
    "usd_initial",
    "usd_text",
]
