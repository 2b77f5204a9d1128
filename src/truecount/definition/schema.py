"""JSON Schema of the definition format, generated from the models so it cannot drift.

Editors (VS Code's YAML extension, JetBrains) use it for completion and inline errors; the
committed copy in ``schema/definition.schema.json`` is checked against this in the tests.
"""

from __future__ import annotations

from typing import Any

from truecount.definition.model import Definition

SCHEMA_ID = "https://truecount.dev/schema/definition-1.json"


def definition_schema() -> dict[str, Any]:
    schema = Definition.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "truecount outcome definition (format 1)"
    return schema
