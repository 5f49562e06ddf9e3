"""The MLflow pyfunc that carries a trained CLVPredictor and everything needed to score with it.

Input: a feature table (one row per customer, columns of `features.pipeline`) at a cut-off.
Output: the score columns (README, "Score columns") except `as_of`, `horizon_days` and `model_version`, which the
scorer adds. The model's metadata is its card (`training.card.ModelCard`): the horizon, the feature
definitions' version, the model format and the targeting thresholds, so a scorer can refuse features
built by a different definition and a model this code cannot run.

Format: the model is logged from code (MLflow models-from-code): MLflow keeps `training/clv_model.py`,
which builds an empty `CLVPyfunc`, and the predictor's state as an artifact, saved as JSON and
XGBoost's own files (`models.persistence`), never a pickle. Loading reads that state into today's
classes. `MODEL_FORMAT` names the layout of that state; it is raised whenever
`models.predictor.CLVPredictor` or an object it holds gains, loses or renames stored state, and
`training.registry.Registry.load` refuses another format (and any model that fails to load or to predict
on a small sample) with a message to retrain or roll back.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from models.persistence import StateError, load_predictor
from models.predictor import CLVPredictor

# 1: models logged before the format was recorded. 2: TargetingRules holds `overdue_churn`.
# 3: CLVPredictor holds `regularity_k` and `base_models`, BTYDFeatures `base` (models.base_choice).
# 4: the predictor is saved as data (models.persistence) and the model logged from code.
# 5: CLVPredictor holds `spend`, BTYDFeatures an `OrderValue` (models.order_value).
# 6: ConformalInterval holds `upper_from_zero_` (models.intervals).
# 7: CLVPredictor holds `log_start_`, TargetingRules `spend_fence_` (customers without a purchase; capped spend).
# 8: CLVPredictor holds `churn_calibration_` (models.calibration.ChurnCalibration); its `matrix_` holds only the
#    columns without money, which both boosted models read (no `count_inputs_`).
MODEL_FORMAT = 8
CODE = Path(__file__).with_name("clv_model.py")
STATE_ARTIFACT = "predictor"


class CLVPyfunc(mlflow.pyfunc.PythonModel):
    """A predictor as MLflow runs it. Logged from code (`CODE`), it starts empty and reads the
    predictor from the model's `STATE_ARTIFACT` when MLflow loads it."""

    def __init__(self, predictor: CLVPredictor | None = None):
        self.predictor = predictor

    def load_context(self, context) -> None:
        if STATE_ARTIFACT not in context.artifacts:  # a pickle of model format 3 or older
            raise StateError("it holds no predictor state (a pickled model from before model format 4)")
        self.predictor = load_predictor(Path(context.artifacts[STATE_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002
        return self.predictor.predict(model_input)


def unwrap(model) -> CLVPyfunc:
    """The CLVPyfunc inside a loaded pyfunc model (skips MLflow's per-call schema checks)."""
    inner = model.unwrap_python_model()
    if not isinstance(inner, CLVPyfunc):
        raise TypeError(f"model is a {type(inner).__name__}, not a CLV model")
    return inner
