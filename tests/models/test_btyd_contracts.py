"""What BG/NBD, Pareto/NBD and MBG/CNBD-k all promise: finite, bounded, monotone output on extreme histories,
directional behaviour, scikit-learn estimator contracts, clear errors on bad input, and fitting a
million customers."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from models import bgnbd, mbgcnbd, pareto_nbd
from models.bgnbd import BetaGeoModel
from models.mbgcnbd import ErlangBetaGeoModel
from models.pareto_nbd import ParetoNBDModel

MODELS = {
    "bgnbd": (BetaGeoModel, bgnbd.simulate, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
    "pareto_nbd": (
        ParetoNBDModel,
        pareto_nbd.simulate,
        {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},
    ),
    "mbgcnbd": (
        functools.partial(ErlangBetaGeoModel, k=3),
        functools.partial(mbgcnbd.simulate, k=3),
        {"r": 1.3, "alpha": 1.75, "a": 0.45, "b": 0.84},  # about the grocery cohort's fit
    ),
}
HORIZONS_DAYS = [0, 1, 7, 30, 91, 365, 3 * 365, 10 * 365, 100 * 365]
YEAR = 365.0


@pytest.fixture(params=list(MODELS), ids=list(MODELS))
def kind(request):
    return MODELS[request.param]


def with_params(kind) -> BetaGeoModel | ParetoNBDModel:
    cls, _, params = kind
    model = cls()
    model.params_ = dict(params)
    return model


def extreme_histories() -> pd.DataFrame:
    """Histories in days: (x, t_x, T)."""
    rows = [
        (500, 20 * YEAR - 3, 20 * YEAR),  # a daily-ish buyer for 20 years, active
        (500, 2 * YEAR, 20 * YEAR),  # the same buyer, silent for 18 years
        (500, 600, 700),  # 500 purchase days in under 2 years
        (3000, 10 * YEAR, 10 * YEAR),  # every day for 10 years, bought today
        (0, 0, 20 * YEAR),  # one order 20 years ago
        (0, 0, 0),  # first order today
        (0, 0, 1),
        (1, 1, 1),
        (1, 0.5, 20 * YEAR),
        (40, 20 * YEAR, 20 * YEAR),
    ]
    x, t_x, age = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(len(rows))],
            "btyd_frequency": x,
            "btyd_recency": t_x,
            "btyd_age": age,
        }
    )


# ------------------------------------------------------------------------------ numerical stability
def test_extreme_histories_give_finite_bounded_monotone_output(kind):
    model, X = with_params(kind), extreme_histories()
    with np.errstate(over="raise", invalid="raise"):  # no overflow or nan hidden behind a clip
        alive = model.p_alive(X)
        ll = model.log_likelihood(X)
    assert np.isfinite(ll).all()
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()

    expected = np.array([model.expected_purchases(X, t) for t in HORIZONS_DAYS])
    quiet = np.array([model.p_no_purchase(X, t) for t in HORIZONS_DAYS])
    assert np.isfinite(expected).all() and np.isfinite(quiet).all()
    assert (expected >= 0).all()
    assert ((quiet >= 0) & (quiet <= 1)).all()
    assert (expected[0] == 0).all() and (quiet[0] == 1).all()
    # More time, more purchases expected and less chance of none (up to rounding).
    assert (np.diff(expected, axis=0) >= -1e-12 * (1 + expected[1:])).all()
    assert (np.diff(quiet, axis=0) <= 1e-12).all()
    # The 20-year regular who bought 3 days ago keeps her own pace: 500 purchases / 20 years = 25 a year.
    assert 20 < expected[HORIZONS_DAYS.index(365), 0] < 30


def test_frequent_recent_buyers_rank_above_lapsed_ones(kind):
    # Directional expectations: same frequency and age, a later last purchase means more alive and
    # more future purchases; same recency pattern, more purchases means more future purchases.
    model = with_params(kind)
    X = pd.DataFrame(
        {
            "btyd_frequency": [5.0, 5.0, 5.0, 20.0],
            "btyd_recency": [100.0, 300.0, 360.0, 360.0],
            "btyd_age": [365.0, 365.0, 365.0, 365.0],
        }
    )
    alive, expected = model.p_alive(X), model.expected_purchases(X, 365)
    assert alive[0] < alive[1] < alive[2]
    assert expected[0] < expected[1] < expected[2] < expected[3]


def test_fitted_models_predict_sensibly_on_their_own_data(kind):
    cls, simulate, params = kind
    rng = np.random.default_rng(61)
    X = simulate(params, rng.uniform(1, 3 * YEAR, 10_000), seed=62)
    model = cls().fit(X)
    ll = model.log_likelihood(X)
    assert np.isfinite(ll).all() and model.log_likelihood_ == pytest.approx(ll.sum(), rel=1e-10)
    for t in (30, 365):
        assert np.isfinite(model.expected_purchases(X, t)).all()
        quiet = model.p_no_purchase(X, t)
        assert ((quiet >= 0) & (quiet <= 1)).all()


def test_fit_survives_a_base_where_nobody_repeats(kind):
    cls, _, _ = kind
    X = pd.DataFrame(
        {
            "btyd_frequency": 0.0,
            "btyd_recency": 0.0,
            "btyd_age": np.random.default_rng(0).integers(1, 700, 2_000).astype(float),
        }
    )
    model = cls(penalizer=0.01).fit(X)
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values())
    assert np.isfinite(model.expected_purchases(X, 365)).all()
    assert (model.expected_purchases(X, 365) < 0.05).all()


def test_fits_a_million_customers():
    # Timing lives in benchmarks/btyd.py; the test only shows a base of this size fits to finite values.
    # (Pareto/NBD, about twice as slow, fits 200k customers in tests/models/test_pareto_nbd.py.)
    cls, simulate, params = MODELS["bgnbd"]
    rng = np.random.default_rng(71)
    X = simulate(params, rng.integers(1, 3 * 365, 1_000_000), seed=72)
    X["btyd_recency"] = np.floor(X["btyd_recency"])  # whole days, as features.rfm produces
    model = cls().fit(X)
    assert model.n_customers_ == 1_000_000
    assert np.isfinite(model.log_likelihood_)
    for key, value in model.params_.items():
        assert np.isfinite(value) and value == pytest.approx(params[key], rel=0.1), key


# ---------------------------------------------------------------------------- scikit-learn contract
def test_follows_the_scikit_learn_estimator_contract(kind):
    cls, simulate, params = kind
    model = cls(time_scale=7.0, penalizer=0.1)
    assert {"time_scale": 7.0, "penalizer": 0.1}.items() <= model.get_params().items()
    assert model.set_params(penalizer=0.0) is model and model.penalizer == 0.0
    assert "time_scale" in repr(cls(time_scale=1.0))

    X = simulate(params, np.random.default_rng(81).uniform(100, 700, 3_000), seed=82)
    before = X.copy()
    assert model.fit(X) is model
    check_is_fitted(model)
    pd.testing.assert_frame_equal(X, before)  # fit does not touch its input

    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "params_")
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)

    # Predictions are pure: same input, same output, input untouched; a pickle predicts the same.
    first = model.expected_purchases(X, 365)
    np.testing.assert_array_equal(first, model.expected_purchases(X, 365))
    pd.testing.assert_frame_equal(X, before)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.p_alive(X), model.p_alive(X))


@pytest.mark.parametrize(
    "method", [("p_alive",), ("log_likelihood",), ("expected_purchases", 30), ("p_no_purchase", 30)]
)
def test_predicting_before_fit_raises_not_fitted(kind, method):
    cls, _, _ = kind
    name, *args = method
    with pytest.raises(NotFittedError, match="fit"):
        getattr(cls(), name)(extreme_histories(), *args)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda X: X.drop(columns="btyd_recency"), ValueError, "btyd_recency"),
        (lambda X: X.assign(btyd_recency=X["btyd_age"] + 1), ValueError, "customer c0"),
        (lambda X: X.assign(btyd_frequency=-1.0), ValueError, "btyd_frequency"),
        (lambda X: X.assign(btyd_age=np.nan), ValueError, "missing"),
        (lambda X: X.to_numpy(), TypeError, "DataFrame"),
    ],
)
def test_bad_input_fails_with_a_clear_message(kind, change, error, message):
    cls, _, _ = kind
    with pytest.raises(error, match=message):
        cls().fit(change(extreme_histories()))
    with pytest.raises(error, match=message):
        with_params(kind).p_alive(change(extreme_histories()))
