"""The MLflow pyfunc that carries a trained CLVPredictor and everything needed to score with it.

Input: a feature table (one row per customer, columns of `features.pipeline`) at a cut-off.
Output: the score columns (DESIGN.md) except `as_of`, `horizon_days` and `model_version`, which the
scorer adds. The model's metadata records the horizon, the feature definitions' version, the model
format and the targeting thresholds, so a scorer can refuse features built by a different definition
and a model this code cannot run.

Format: MLflow stores the CLVPyfunc object graph with cloudpickle, so a model can only be read by code
whose classes still have the attributes it was saved with. `MODEL_FORMAT` names that layout; it is
raised whenever `models.predictor.CLVPredictor` or an object it holds gains, loses or renames stored
state, and `training.loading.load_model` refuses another format (and any model that fails to load or
to predict on a small sample) with a message to retrain or roll back.
"""

from __future__ import annotations

import mlflow
import pandas as pd

from models.predictor import CLVPredictor

# 1: models logged before the format was recorded. 2: TargetingRules holds `overdue_churn`.
# 3: CLVPredictor holds `regularity_k` and `base_models`, BTYDFeatures `base` (models.base_choice).
MODEL_FORMAT = 3


class CLVPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, predictor: CLVPredictor, metadata: dict):
        self.predictor = predictor
        self.metadata = metadata

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002
        return self.predictor.predict(model_input)


def unwrap(model) -> CLVPyfunc:
    """The CLVPyfunc inside a loaded pyfunc model (skips MLflow's per-call schema checks)."""
    inner = model.unwrap_python_model()
    if not isinstance(inner, CLVPyfunc):
        raise TypeError(f"model is a {type(inner).__name__}, not a CLV model")
    return inner
