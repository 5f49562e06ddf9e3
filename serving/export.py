"""Ranked, filtered customer lists for marketers: one implementation for `clv export`, `POST /export`
and the marketer page, so the three always agree.

Filters combine with AND: segments and actions (any of the given names), a minimum predicted CLV, a
churn-probability range; then the list is ranked by predicted CLV (highest first, ties by customer
id) and `top` keeps the first N rows, or the first P% of the filtered list ("500" or "10%").
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.files import spreadsheet_csv
from models.targeting import ACTIONS, SEGMENTS

_TOP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
# More customers than any score table holds; larger is a typo, and pandas cannot take it as a count.
MAX_TOP = 10**12


def _plain(number: int | float) -> str:
    """A JSON number as plain digits for the `top` pattern (1e3 -> "1000"; infinity -> "inf")."""
    if isinstance(number, float) and not math.isfinite(number):
        return str(number)
    return f"{Decimal(number):f}"


class ExportFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: list[str] | None = Field(None, description=f"any of: {', '.join(SEGMENTS)}")
    action: list[str] | None = Field(None, description=f"any of: {', '.join(ACTIONS)}")
    top: str | None = Field(
        None, description='"N" customers or "P%" of the filtered list, e.g. "500" or "10%"'
    )
    min_clv: float | None = Field(None, ge=0, description="minimum predicted CLV")
    churn_min: float | None = Field(None, ge=0, le=1, description="minimum churn probability")
    churn_max: float | None = Field(None, ge=0, le=1, description="maximum churn probability")

    @field_validator("segment", "action", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        # A single name is as natural as a list, in JSON and in query strings.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        # Trimmed as in a string, so `--segment ' vip '` and {"segment": [" vip "]} read alike.
        if isinstance(value, list):
            return [part.strip() if isinstance(part, str) else part for part in value]
        return value

    @field_validator("segment")
    @classmethod
    def _known_segments(cls, value):
        return _known(value, SEGMENTS, "segment")

    @field_validator("action")
    @classmethod
    def _known_actions(cls, value):
        return _known(value, ACTIONS, "action")

    @field_validator("top", mode="before")
    @classmethod
    def _top_format(cls, value):
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(
                f'top must be a number of customers ("500") or a percentage ("10%"), not {value!r}'
            )
        # Decimal, not float: "1" followed by 400 zeros is a (silly) whole number, not infinity.
        match = _TOP.match(value if isinstance(value, str) else _plain(value))
        if not match:
            raise ValueError(
                f'top must be a number of customers ("500") or a percentage ("10%"), not {str(value)[:40]!r}'
            )
        number, percent = Decimal(match.group(1)), match.group(2)
        if percent and not 0 < number <= 100:
            raise ValueError(f"top percentage must be in (0, 100], not {number:g}")
        if not percent and not (1 <= number <= MAX_TOP and number == number.to_integral_value()):
            raise ValueError(
                f"top must be a whole number of customers from 1 to {MAX_TOP:,}, not {number:.6g}"
            )
        return f"{number.normalize():f}%" if percent else str(int(number))

    @field_validator("churn_min", "churn_max", "min_clv", mode="before")
    @classmethod
    def _in_range(cls, value, info):
        # Before the Field's bounds (kept for the OpenAPI schema), whose message names no fix.
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value  # not a number: pydantic's own message says so
        if info.field_name == "min_clv" and not 0 <= number < math.inf:
            # Infinity passed every row's test and gave an empty list without a word.
            raise ValueError(f"the minimum predicted CLV is a finite number, 0 or more, not {number:g}")
        if info.field_name != "min_clv" and not 0 <= number <= 1:
            raise ValueError(f"a churn probability is from 0 to 1 (0.3 for 30%), not {number:g}")
        return value

    @model_validator(mode="after")
    def _churn_range(self):
        if self.churn_min is not None and self.churn_max is not None and self.churn_min > self.churn_max:
            raise ValueError(f"churn_min ({self.churn_min}) is above churn_max ({self.churn_max})")
        return self

    def describe(self) -> str:
        parts = [
            f"{k}={v if not isinstance(v, list) else ','.join(v)}"
            for k, v in self.model_dump().items()
            if v is not None
        ]
        return " ".join(parts) or "no filters"


def _known(values: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    if values is None:
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}")
    return values


def apply_filter(scores: pd.DataFrame, spec: ExportFilter) -> pd.DataFrame:
    """The rows of the score table that pass the filter, ranked by predicted CLV."""
    keep = pd.Series(True, index=scores.index)
    if spec.segment:
        keep &= scores["segment"].isin(spec.segment)
    if spec.action:
        keep &= scores["next_best_action"].isin(spec.action)
    if spec.min_clv is not None:
        keep &= scores["predicted_clv"] >= spec.min_clv
    if spec.churn_min is not None:
        keep &= scores["churn_prob"] >= spec.churn_min
    if spec.churn_max is not None:
        keep &= scores["churn_prob"] <= spec.churn_max
    ranked = scores[keep].sort_values(
        ["predicted_clv", "customer_id"], ascending=[False, True], kind="stable"
    )
    if spec.top:
        n = math.ceil(len(ranked) * float(spec.top[:-1]) / 100) if spec.top.endswith("%") else int(spec.top)
        ranked = ranked.head(n)
    return ranked.reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text of an export (the same bytes from the CLI, the API and the page), written as every CSV is
    (`features.files.spreadsheet_csv`: numbers in full, formula cells quoted)."""
    return spreadsheet_csv(frame)
