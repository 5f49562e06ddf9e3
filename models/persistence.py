"""Saving a fitted predictor as data, not as a pickle: JSON for numbers and XGBoost's own model format.

A saved predictor is a directory:
- `predictor.json`: `{"format": STATE_FORMAT, "predictor": node}`, where a node is one of
  - a JSON scalar: null, true/false, a number (NaN and Infinity as Python's json writes them), a string;
  - `{"list": [node, ...]}`, `{"tuple": [node, ...]}`, `{"dict": {"key": node, ...}}` (string keys);
  - `{"ndarray": [...], "dtype": "float64"}`: a numpy array, nested lists in its shape;
  - `{"xgboost": "booster-0.ubj", "class": "XGBRegressor" | "XGBClassifier"}`: a fitted XGBoost
    model in XGBoost's UBJSON format, a file beside `predictor.json` (XGBoost reads it across
    versions; https://xgboost.readthedocs.io/en/stable/tutorials/saving_model.html);
  - `{"object": "models.<module>.<Class>", "state": {"attribute": node, ...}}`: an object of this
    project's `models` package with its attributes (constructor parameters and fitted state alike),
    except those its class lists in `FIT_ONLY` (kept while fitting only, such as out-of-fold
    predictions).
- XGBoost's files.

Loading imports only classes of the `models` package and XGBoost's two estimators, builds each
object without running its constructor and sets the saved attributes. Nothing in the file can run
code. What the file cannot promise is that today's classes read the attributes an older version
wrote: `training.loading` checks the model format version and runs the loaded predictor on a sample
before serving it, and refuses it with what to do otherwise.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

STATE_FORMAT = 1
STATE_FILE = "predictor.json"
_XGBOOST = {"XGBRegressor": xgb.XGBRegressor, "XGBClassifier": xgb.XGBClassifier}


class StateError(ValueError):
    """A saved predictor this code cannot read; the message says what is wrong."""


def save_predictor(predictor: Any, folder: Path) -> Path:
    """Write `predictor` (any object of the `models` package) to `folder`, created if needed; returns it.

    Raises TypeError naming a value it cannot save (an object from outside `models`, an array of
    strings or objects, a dict with keys other than strings)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = _Encoder(folder)
    document = {"format": STATE_FORMAT, "predictor": encoder.encode(predictor)}
    # Write to a temporary name, then rename: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".predictor-", suffix=".json.tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
    Path(tmp).replace(folder / STATE_FILE)
    return folder


def load_predictor(folder: Path) -> Any:
    """The object saved by `save_predictor` in `folder`. Raises StateError on anything it cannot read."""
    path = Path(folder) / STATE_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from None
    if document.get("format") != STATE_FORMAT:
        raise StateError(
            f"{path} is in state format {document.get('format')}, this code reads {STATE_FORMAT}"
        )
    return _decode(document["predictor"], Path(folder))


class _Encoder:
    def __init__(self, folder: Path):
        self.folder = folder
        self.boosters = 0

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float | np.integer | np.floating):
            return value.item() if isinstance(value, np.generic) else value
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise TypeError(f"cannot save an array of {value.dtype}")
            return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
        if isinstance(value, list | tuple):
            return {type(value).__name__: [self.encode(v) for v in value]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save a dict with keys other than strings: {list(value)[:3]}")
            return {"dict": {k: self.encode(v) for k, v in value.items()}}
        if isinstance(value, xgb.XGBModel):
            name = f"booster-{self.boosters}.ubj"
            self.boosters += 1
            value.save_model(self.folder / name)
            return {"xgboost": name, "class": type(value).__name__}
        cls = type(value)
        if not cls.__module__.startswith("models."):
            raise TypeError(f"cannot save a {cls.__module__}.{cls.__qualname__}")
        skipped = set(getattr(cls, "FIT_ONLY", ()))
        state = {k: self.encode(v) for k, v in vars(value).items() if k not in skipped}
        return {"object": f"{cls.__module__}.{cls.__qualname__}", "state": state}


def _decode(node: Any, folder: Path) -> Any:
    if not isinstance(node, dict):
        return node
    if "ndarray" in node:
        return np.asarray(node["ndarray"], dtype=node["dtype"])
    if "list" in node:
        return [_decode(v, folder) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, folder) for v in node["tuple"])
    if "dict" in node:
        return {k: _decode(v, folder) for k, v in node["dict"].items()}
    if "xgboost" in node:
        if node.get("class") not in _XGBOOST:
            raise StateError(f"unknown XGBoost class {node.get('class')!r}")
        model = _XGBOOST[node["class"]]()
        model.load_model(folder / Path(node["xgboost"]).name)
        return model
    if "object" in node:
        return _build(node["object"], {k: _decode(v, folder) for k, v in node["state"].items()})
    raise StateError(f"unknown node with keys {sorted(node)}")


def _build(qualified: str, state: dict) -> Any:
    module, _, name = qualified.rpartition(".")
    if not module.startswith("models."):
        raise StateError(f"{qualified} is not a class of the models package")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise StateError(f"class {qualified} no longer exists") from None
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj
