"""The boosters predict the same from `FeatureMatrix.codes` as from the frame they were fitted on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.gbm import ChurnClassifier, CountRegressor, FeatureMatrix, select_features


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(["DE", "FR", "GB", "NL"], n).astype(object)
    country[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "frequency": rng.poisson(2, n),
            "recency_days": rng.integers(0, 400, n),
            "gap_mean_days": np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2, 30, n)),
            "country": country,
            "acquisition_channel": rng.choice(["search", "social", "email"], n),
        }
    )


def test_codes_predict_exactly_what_the_frame_predicts():
    train = frame(600, seed=1)
    # The country matters, so the trees split on it.
    orders = np.random.default_rng(2).poisson(1 + train["frequency"] + (train["country"] == "DE") * 3)
    churned = orders == 0
    matrix = FeatureMatrix(select_features(train), train)
    X = matrix.transform(train)
    count = CountRegressor(n_estimators=40, seed=0).fit(X, orders)
    churn = ChurnClassifier(n_estimators=40, seed=0).fit(X, churned)

    scored = frame(200, seed=3)
    scored.loc[:9, "country"] = "ZZ"  # a country never seen in training
    scored["recency_days"] = scored["recency_days"].astype(object)  # numbers arriving as objects
    margin = np.log(np.full(len(scored), 1.5))

    by_frame, by_codes = matrix.transform(scored), matrix.codes(scored)
    assert by_codes.dtype == np.float32 and by_codes.shape == (len(scored), len(matrix.names))
    np.testing.assert_array_equal(count.predict(by_codes, margin), count.predict(by_frame, margin))
    np.testing.assert_array_equal(churn.predict_proba_churn(by_codes), churn.predict_proba_churn(by_frame))
    # The category codes carry information: shuffling them changes the predictions.
    country = matrix.names.index("country")
    shuffled = by_codes.copy()
    shuffled[:, country] = np.where(np.isnan(by_codes[:, country]), np.nan, (by_codes[:, country] + 1) % 4)
    assert not np.array_equal(count.predict(shuffled, margin), count.predict(by_codes, margin))
