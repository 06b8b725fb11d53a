"""What every check returns: a results section for the report, and the findings it drafts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FindingDraft:
    """A finding as a check proposes it; ``subject`` identifies the problem across runs."""

    check: str
    subject: str
    severity: str
    title: str
    evidence: dict[str, Any]
    model_version_id: int | None = None

    @property
    def fingerprint(self) -> str:
        return f"{self.check}:{self.subject}"[:255]


@dataclass
class CheckOutcome:
    """One check's contribution to a run: its results section and its findings."""

    name: str
    status: str = "ok"  # ok | unavailable (the data or the component it needs is not there)
    summary: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    findings: list[FindingDraft] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "results": jsonable(self.results), "findings": len(self.findings)}


def jsonable(value: Any) -> Any:
    """numpy/pandas scalars → Python; NaN and infinities → None, so results store as strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def rounded(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)
