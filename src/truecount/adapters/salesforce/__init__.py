"""Salesforce Service Cloud and Agentforce: cases, their history, messaging sessions, surveys.

A Salesforce export is several objects queried separately (REST ``query`` pages with a
``records`` array, JSON Lines of those records, or Bulk API 2.0 CSV): ``Case``,
``CaseHistory``, ``CaseStatus``, ``MessagingSession``, ``SurveySubject`` and
``SurveyQuestionResponse``. The billable entity is the case, so every event is on a case Id
(18 characters; 15-character Ids, as reports print them, are extended to 18 so both spellings
meet).

What makes a Salesforce count need choices, all options recorded with every file:

* a close is a ``CaseHistory`` row whose ``Status`` enters a closed status, and which
  statuses are closed is the org's own setting (``CaseStatus.IsClosed``);
* the user on a close row (``CreatedById``) is often an automation user that closes cases
  whether the bot or a person handled them, so "closed by the AI" is decided by the case's
  messaging sessions (``MessagingSession.AgentType``) and/or a list of AI user ids;
* ratings are survey answers linked to the case through ``SurveySubject``.

The last two join files: history needs the sessions and statuses, answers need the survey
links. Each file is still one fixed SELECT: it reads its own records and, through the view of
the events already stored (:data:`truecount.adapters.base.STORE`), the companion kinds it
declares in ``reads``, which the ingest loads first. Only data from before an event is used
to judge it (the sessions that started before a close), so loading a later export never
changes what an earlier one meant.

The package keeps one module per object family: :mod:`.options` (Ids and the options),
:mod:`.sql` (the SQL pieces they share), :mod:`.cases` (``Case``, ``CaseStatus``),
:mod:`.history` (``CaseHistory``), :mod:`.sessions` (``MessagingSession``), :mod:`.surveys`
(``SurveySubject``, ``SurveyQuestionResponse``) and :mod:`.adapter` (recognising a file).
"""

from __future__ import annotations

from truecount.adapters.salesforce.adapter import ADAPTER, SalesforceAdapter
from truecount.adapters.salesforce.options import (
    AGENT_TYPES,
    DATATYPES,
    NUMERIC_DATATYPES,
    OWNER_FIELDS,
    VENDOR,
    SalesforceOptions,
    salesforce_id18,
)

__all__ = [
    "ADAPTER",
    "AGENT_TYPES",
    "DATATYPES",
    "NUMERIC_DATATYPES",
    "OWNER_FIELDS",
    "VENDOR",
    "SalesforceAdapter",
    "SalesforceOptions",
    "salesforce_id18",
]
