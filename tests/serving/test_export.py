"""The export filter on its own: validation messages, filtering, ranking and `top` (no model needed)."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from pydantic import ValidationError

from models.targeting import ACTIONS, SEGMENTS
from serving.export import ExportFilter, apply_filter, to_csv


@pytest.fixture
def scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c5", "c1", "c3", "c2", "c4", "c6"],
            "predicted_clv": [50.0, 300.0, 120.0, 120.0, 10.0, 0.0],
            "churn_prob": [0.9, 0.1, 0.5, 0.3, 0.7, 0.95],
            "segment": ["high_value_at_risk", "vip", "nurture", "vip", "nurture", "lapsed_valuable"],
            "next_best_action": ["retention_offer", "upsell", "nurture", "upsell", "nurture", "win_back"],
        }
    )


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["customer_id"].tolist()


def test_no_filter_ranks_everyone_by_clv_with_ties_by_id(scores):
    assert ids(apply_filter(scores, ExportFilter())) == ["c1", "c2", "c3", "c5", "c4", "c6"]


def test_filters_combine_with_and(scores):
    spec = ExportFilter(segment=["vip", "nurture"], churn_max=0.5, min_clv=100)
    assert ids(apply_filter(scores, spec)) == ["c1", "c2", "c3"]
    assert ids(apply_filter(scores, ExportFilter(action="upsell,retention_offer"))) == ["c1", "c2", "c5"]


def test_churn_bounds_are_inclusive(scores):
    assert ids(apply_filter(scores, ExportFilter(churn_min=0.5, churn_max=0.9))) == ["c3", "c5", "c4"]


@pytest.mark.parametrize(
    ("top", "expected"),
    [("2", ["c1", "c2"]), (2, ["c1", "c2"]), ("50%", ["c1", "c2", "c3"]), ("1%", ["c1"]), ("100%", None)],
)
def test_top_keeps_the_first_n_or_percent_of_the_filtered_list(scores, top, expected):
    everyone = ids(apply_filter(scores, ExportFilter()))
    assert ids(apply_filter(scores, ExportFilter(top=top))) == (expected or everyone)


def test_top_percent_applies_after_the_other_filters(scores):
    # 3 vip/nurture rows with churn <= 0.5; 50% of 3 rounds up to 2.
    spec = ExportFilter(segment=["vip", "nurture"], churn_max=0.5, top="50%")
    assert ids(apply_filter(scores, spec)) == ["c1", "c2"]


def test_the_input_table_is_left_unchanged(scores):
    before = scores.copy()
    apply_filter(scores, ExportFilter(segment="vip", top="1"))
    pd.testing.assert_frame_equal(scores, before)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"segment": ["vip", "gold"]}, f"unknown segment 'gold'; choose from {', '.join(SEGMENTS)}"),
        ({"action": "discount"}, f"unknown action 'discount'; choose from {', '.join(ACTIONS)}"),
        ({"top": "ten"}, 'top must be a number of customers ("500") or a percentage ("10%")'),
        ({"top": "0"}, "whole number of customers from 1 to"),
        ({"top": "2.5"}, "whole number of customers from 1 to"),
        ({"top": "150%"}, "top percentage must be in (0, 100]"),
        ({"churn_min": 0.8, "churn_max": 0.2}, "churn_min (0.8) is above churn_max (0.2)"),
        ({"churn_max": 1.5}, "a churn probability is from 0 to 1 (0.3 for 30%), not 1.5"),
        ({"churn_min": "50%"}, "churn_min\n  Input should be a valid number"),
        ({"min_clv": -1}, "the minimum predicted CLV is a finite number, 0 or more, not -1"),
        ({"min_clv": 1e400}, "the minimum predicted CLV is a finite number, 0 or more, not inf"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_filters_say_what_is_wrong(fields, says):
    with pytest.raises(ValidationError) as caught:
        ExportFilter(**fields)
    assert says in str(caught.value)


def test_names_in_a_list_are_trimmed_as_in_a_string(scores):
    """`clv export --segment ' vip '` wrote 109 rows where POST /export {"segment": [" vip "]} answered
    "unknown segment ' vip '": one contract for both."""
    assert ExportFilter(segment=[" vip "], action=["upsell "]) == ExportFilter(
        segment=" vip ", action="upsell "
    )
    assert ids(apply_filter(scores, ExportFilter(segment=[" vip "]))) == ["c1", "c2"]


def test_describe_names_the_active_filters():
    assert ExportFilter().describe() == "no filters"
    assert ExportFilter(segment="vip,new", top=" 10 % ").describe() == "segment=vip,new top=10%"


def test_csv_round_trips_ids_and_order(scores):
    text = to_csv(apply_filter(scores, ExportFilter()))
    back = pd.read_csv(io.StringIO(text), dtype={"customer_id": str})
    assert ids(back) == ["c1", "c2", "c3", "c5", "c4", "c6"]
    assert list(back.columns) == list(scores.columns)


@pytest.mark.parametrize(
    ("top", "says"),
    [
        ("1" + "0" * 400, "top must be a whole number of customers from 1 to 1,000,000,000,000"),
        (10**400, "top must be a whole number of customers from 1 to 1,000,000,000,000"),
        (float("inf"), "not 'inf'"),
        (True, "not True"),
        (["5"], "not ['5']"),
    ],
)
def test_absurd_tops_are_refused_not_overflowed(top, says):
    with pytest.raises(ValidationError) as caught:
        ExportFilter(top=top)
    assert says in str(caught.value)


def test_csv_cells_a_spreadsheet_would_run_get_a_quote(scores):
    risky = scores.assign(customer_id=["=1+1", "+c1", "-c3", "@SUM(A1)", "\tc4", "c6"])
    rows = pd.read_csv(io.StringIO(to_csv(risky)), dtype={"customer_id": str})
    assert rows["customer_id"].tolist() == ["'=1+1", "'+c1", "'-c3", "'@SUM(A1)", "'\tc4", "c6"]
    # Numbers are not text: a negative value stays a number.
    assert (
        to_csv(scores.assign(predicted_clv=-1.5)).splitlines()[1]
        == "c5,-1.5,0.9,high_value_at_risk,retention_offer"
    )
