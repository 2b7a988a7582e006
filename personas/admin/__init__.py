"""Admin for agents, personas and the cap-change audit trail.

Persona files are the truth: every persona field is read-only here except the budget,
which is saved through ``personas.services.write_budget`` (the one writer of persona
files). Spend (gauges, charts, columns) is added by ``budgets.admin``, which subclasses
these classes: ``personas`` never imports ``budgets``.

The modules: ``display`` (how caps and changes read), ``budget_form`` (the budget form of
every scope), ``budget_page`` (what the persona's, an agent's and the platform's pages
share: ``BudgetPageAdmin``), ``scope`` (the agent's and the platform's budget pages:
``PlatformAdmin``),
``agent`` (``AgentAdmin``: its budget and its personas inline), ``audit``
(``BudgetChangeAdmin``) and ``persona`` (``PersonaAdmin``). Importing this package
registers the four.
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
    TOKEN_BUDGET_KEYS,
    AgentBudgetForm,
    BudgetForm,
    PersonaBudgetForm,
    PlatformBudgetForm,
    TokenField,
    UsdField,
    UsdInput,
    cap_note,
    conflict_rows,
    fresh_persona,
    scope_of,
    usd_initial,
)
from personas.admin.budget_page import BudgetPageAdmin
from personas.admin.display import (
    CAP_FIELDS,
    ReadOnlyAdmin,
    ReadOnlyInlineMixin,
    budget_diff,
    caps_summary,
    usd_text,
)
from personas.admin.persona import PersonaAdmin
from personas.admin.scope import PlatformAdmin, ScopeBudgetAdmin

__all__ = [
    "BUDGET_KEYS",
    "CAP_FIELDS",
    "CAP_NOTES",
    "EMPTY_VS_ZERO",
    "NO_CAP",
    "TIMEZONES",
    "TOKEN_BUDGET_KEYS",
    "AgentAdmin",
    "AgentBudgetForm",
    "BudgetChangeAdmin",
    "BudgetForm",
    "BudgetPageAdmin",
    "PersonaAdmin",
    "PersonaBudgetForm",
    "PersonaInline",
    "PlatformAdmin",
    "PlatformBudgetForm",
    "ReadOnlyAdmin",
    "ReadOnlyInlineMixin",
    "ScopeBudgetAdmin",
    "TokenField",
    "UsdField",
    "UsdInput",
    "budget_diff",
    "cap_note",
    "caps_summary",
    "conflict_rows",
    "fresh_persona",
    "scope_of",
    "usd_initial",
    "usd_text",
]
