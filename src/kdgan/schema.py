"""The base of every config section's schema, kdgan's own and a task package's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def choice(value: str, valid: Any) -> str:
    """For field validators: `value` if it is one of `valid`, else the one-line error."""
    if value not in valid:
        raise ValueError(f"unknown {value!r}; valid: {', '.join(valid)}")
    return value
