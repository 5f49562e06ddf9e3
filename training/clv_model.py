"""The model code MLflow logs with every CLV model (models-from-code, `training.pyfunc`)."""

from mlflow.models import set_model

from training.pyfunc import CLVPyfunc

set_model(CLVPyfunc())
