"""Metrics on hand-checked inputs, and against the shared accuracy bench's reference definitions.

The reference is `bench/score.py` in the shared folder (/work/shared/bench/score.py on the development
machines). CI runs on a clean clone without it, so the values it gives on the fixed inputs below are
pasted here (REFERENCE); when the script is present, the tests also compare with it live.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import metrics

REFERENCE_SCRIPT = Path("/work/shared/bench/score.py")


def small():
    """15 customers, ties in the prediction across the decile boundaries, churn probabilities outside [0, 1]."""
    y = np.array([0, 0, 5, 0, 12.5, 3, 0, 40, 0, 7, 0, 0, 1, 0, 22])
    p = np.array([0.5, 0.5, 3, 0.5, 9, 3, 0, 20, 0, 3, 1, 1, 2, 0.5, 9])
    c = np.array([0.9, 0.2, 0.3, 0.8, 0.1, 0.3, 1.2, -0.1, 0.95, 0.3, 0.3, 0.6, 0.4, 0.7, 0.2])
    return y, p, c, y == 0


def ties():
    """205 customers (top decile round(20.5) = 20), a third without revenue, predictions in 17 tied levels."""
    i = np.arange(205)
    y = np.where(i % 3 == 0, 0.0, (i * 37) % 101 / 2)
    p = np.floor((y + (i * 53) % 17) / 6)
    c = np.round(1 / (1 + p), 1)
    return y, p, c, y == 0


def few():
    """Fewer customers than deciles: bins 3, 6 and 9 are empty, three more have no revenue."""
    y = np.array([3.0, 0, 0, 8, 1, 0, 2])
    p = np.array([2.0, 1, 1, 5, 1, 0, 2])
    c = np.array([0.2, 0.7, 0.5, 0.1, 0.5, 0.9, 0.3])
    return y, p, c, y == 0


CASES = {"small": small, "ties": ties, "few": few}

# Computed once with /work/shared/bench/score.py on 2026-11-30: `score.py --truth T --pred P` on these
# inputs written as CSV (it prints 4 decimals), and the full-precision values from its functions
# (gini(y, p) / gini(y, y), top_share, decile_mape) and the scipy / scikit-learn calls its `score` makes.
REFERENCE = {
    "small": {
        "spearman": 0.9264404651993314,
        "normalized_gini": 0.9833174451858915,
        "top_decile_capture": 0.6325966850828729,
        "decile_mape": 0.5599378881987578,
        "decile_zero_bins": 5,
        "aggregate_error": -0.41436464088397795,
        "churn_auc": 0.875,
        "brier": 0.12750000000000003,
    },
    "ties": {
        "spearman": 0.9209802679467542,
        "normalized_gini": 0.9589676187151174,
        "top_decile_capture": 0.264293122790678,
        "decile_mape": 0.7174155589380182,
        "decile_zero_bins": 0,
        "aggregate_error": -0.7798192324788857,
        "churn_auc": 0.9283687197813748,
        "brier": 0.12717073170731705,
    },
    "few": {
        "spearman": 0.9126643739222254,
        "normalized_gini": 0.9531249999999998,
        "top_decile_capture": 0.5714285714285714,
        "decile_mape": 0.17708333333333331,
        "decile_zero_bins": 3,
        "aggregate_error": -0.1428571428571429,
        "churn_auc": 0.9583333333333333,
        "brier": 0.10571428571428572,
    },
}
# score.py's names for the metrics whose names differ here.
REFERENCE_NAMES = {"normalized_gini": "norm_gini", "brier": "churn_brier"}


def ours(y, p, c, churned) -> dict[str, float]:
    return {
        **metrics.value_metrics(y, p),
        "decile_zero_bins": metrics.decile_zero_bins(y, p),
        **metrics.churn_metrics(churned, c),
    }


@pytest.mark.parametrize("case", CASES)
def test_metrics_equal_the_pinned_reference_values(case):
    got = ours(*CASES[case]())
    for name, expected in REFERENCE[case].items():
        assert got[name] == pytest.approx(expected, rel=1e-12, abs=1e-15), name


def load_reference():
    if not REFERENCE_SCRIPT.is_file():
        pytest.skip(f"{REFERENCE_SCRIPT} is not on this machine (the pinned values are checked instead)")
    spec = importlib.util.spec_from_file_location("bench_score", REFERENCE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_case(seed: int, n: int):
    """Many zeros, a long tail and heavily tied predictions, like a real holdout."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.6, 0.0, np.round(rng.gamma(0.7, 80, n), 2))
    p = np.round(np.clip(y * rng.lognormal(0, 1, n) + rng.gamma(0.5, 10, n), 0, None), -1)
    c = np.round(rng.random(n), 1)
    return y, p, c, y == 0


LIVE_CASES = {
    **{k: f() for k, f in CASES.items()},
    **{f"random{s}": random_case(s, 997 + s) for s in range(3)},
}


@pytest.mark.parametrize("case", LIVE_CASES)
def test_metrics_equal_the_reference_script_live(case):
    ref = load_reference()
    y, p, c, churned = LIVE_CASES[case]
    got = ours(y, p, c, churned)
    # Its functions, at full precision.
    assert got["normalized_gini"] == pytest.approx(ref.gini(y, p) / ref.gini(y, y), rel=1e-12)
    assert got["top_decile_capture"] == pytest.approx(ref.top_share(y, p), rel=1e-12)
    mape, zero_bins = ref.decile_mape(y, p)
    assert got["decile_mape"] == pytest.approx(mape, rel=1e-12)
    assert got["decile_zero_bins"] == zero_bins
    # Its whole `score` (merge, fill, rounding to 4 decimals).
    ids = [f"c{i}" for i in range(len(y))]
    truth = pd.DataFrame({"customer_id": ids, "holdout_revenue": y, "holdout_orders": 0, "churned": churned})
    result = ref.score(truth, pd.DataFrame({"customer_id": ids, "pred_revenue": p, "churn_prob": c}))
    for name in REFERENCE[next(iter(REFERENCE))]:
        expected = result[REFERENCE_NAMES.get(name, name)]
        assert got[name] == pytest.approx(expected, abs=5.001e-5), name


def test_constant_prediction_matches_the_reference():
    y, *_ = small()
    constant = np.ones_like(y)
    # The reference prints null for Spearman of a constant prediction; it carries no ranking.
    assert np.isnan(metrics.spearman(y, constant))
    # Every customer gets the mean: Gini exactly 0, the top decile holds k / n of the total.
    assert metrics.normalized_gini(y, constant) == pytest.approx(0.0, abs=1e-12)
    assert metrics.top_decile_capture(y, constant) == pytest.approx(2 / 15)


def test_undefined_values_are_nan_not_zero():
    zeros = np.zeros(5)
    p = np.arange(5.0)
    for fn in (
        metrics.spearman,
        metrics.normalized_gini,
        metrics.top_decile_capture,
        metrics.decile_mape,
        metrics.aggregate_error,
    ):
        assert np.isnan(fn(zeros, p)), fn.__name__
    assert np.isnan(metrics.churn_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.value_metrics([1.0, 2.0], [1.0, np.nan])


def test_gini_is_one_for_perfect_ranking_and_negative_for_reversed():
    y = np.array([0, 0, 1, 5, 10, 0, 3.0])
    assert metrics.normalized_gini(y, y) == pytest.approx(1.0)
    assert metrics.normalized_gini(y, -y) < 0


def test_gini_of_random_scores_is_near_zero():
    rng = np.random.default_rng(0)
    y = rng.gamma(0.5, 100, 20_000)
    assert abs(metrics.normalized_gini(y, rng.random(20_000))) < 0.03


def test_top_decile_capture_by_hand():
    y = np.array([100, 0, 0, 0, 0, 0, 0, 0, 0, 100.0])
    pred = np.arange(10.0)  # ranks customer 9 first: captures 100 of 200
    assert metrics.top_decile_capture(y, pred) == pytest.approx(0.5)
    assert metrics.top_decile_capture(y, y) == pytest.approx(0.5)
    # Customers 0 (100) and 1 (0) tied for the single top place: the expected capture is 50 of 200.
    tied = np.array([1.0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert metrics.top_decile_capture(y, tied) == pytest.approx(0.5 * 100 / 200)


def test_decile_mape_and_aggregate_error():
    y = np.arange(1, 101, dtype=float)
    assert metrics.decile_mape(y, y) == pytest.approx(0)
    assert metrics.decile_mape(y, 1.1 * y) == pytest.approx(0.1)
    assert metrics.aggregate_error(y, 0.9 * y) == pytest.approx(-0.1)


def test_decile_table_uses_the_decile_mape_bins():
    y = np.arange(1, 21, dtype=float)
    predicted, actual = metrics.decile_table(y, 2 * y)
    assert actual.tolist() == [1.5 + 2 * k for k in range(10)]
    assert predicted == pytest.approx(2 * actual)


def test_mae_rmse_coverage():
    y = np.array([1.0, 2.0, 3.0])
    p = np.array([2.0, 2.0, 5.0])
    assert metrics.mae(y, p) == pytest.approx(1.0)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.interval_coverage(y, p - 1, p + 1) == pytest.approx(2 / 3)


def test_spearman_ranks():
    assert metrics.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_churn_metrics_and_calibration():
    churned = np.array([0, 0, 1, 1])
    assert metrics.churn_auc(churned, [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert metrics.brier(churned, [0, 0, 1, 1]) == pytest.approx(0.0)
    # Probabilities are clipped to [0, 1] first, as in the reference (1.5 and 1.2 become a tie).
    assert metrics.brier(churned, [-0.5, 0, 1.5, 1]) == pytest.approx(0.0)
    assert metrics.churn_auc([0, 1, 0], [1.5, 1.2, 0.0]) == pytest.approx(0.75)
    mean_pred, observed, count = metrics.calibration_table(churned, [0.05, 0.05, 0.95, 0.95], n_bins=10)
    assert count[0] == 2 and count[9] == 2
    assert observed[0] == 0 and observed[9] == 1 and mean_pred[9] == pytest.approx(0.95)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="equal length"):
        metrics.spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="equal length"):
        metrics.brier([1, 0], [0.5])


def test_poisson_deviances_average_to_scikit_learns_and_vanish_for_exact_counts():
    from sklearn.metrics import mean_poisson_deviance

    y, mu = np.array([0, 1, 3, 0, 2, 7]), np.array([0.5, 1.2, 2.0, 0.1, 2.0, 4.0])
    assert metrics.poisson_deviances(y, mu).mean() == pytest.approx(mean_poisson_deviance(y, mu), rel=1e-12)
    assert metrics.poisson_deviances([2, 5], [2, 5]) == pytest.approx([0, 0], abs=1e-12)
    assert (metrics.poisson_deviances(y, mu) >= 0).all()
