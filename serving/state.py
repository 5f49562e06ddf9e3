"""What the service serves: the champion model, the latest score table, and facts about both.

The service never trains. `ServingState.reload_if_changed` is called periodically (and by
`POST /admin/reload`): it looks up the champion's version in the MLflow registry and the score
file's modification time, and when either changed it loads the new pair and swaps it in as one
object, so a request sees either the old model and scores or the new ones, never a mix.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import Settings
from models.predictor import output_semantics
from serving.scores import ScoresUnavailable, ScoreTable
from training.loading import LoadedModel
from training.registry import ModelNotFound, Registry
from training.tracking import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    model: LoadedModel
    scores: ScoreTable
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def info(self) -> dict:
        """`GET /model`: the model's card (dates as ISO text) and the score table's facts."""
        card = self.model.card
        stored = card.to_dict()
        return {
            "model": {
                "uri": self.model.uri,
                "version": self.model.version,
                "trained_at": stored["trained_at"],
                "as_of": stored["as_of"],
                "horizon_days": card.horizon_days,
                "value_unit": card.value_unit,
                "served_model": card.served_model,
                "base_models": card.base_models,
                "cross_sell_served": card.cross_sell_served,
                "plan": card.plan,
                "notes": card.notes,
                "features_version": card.features_version,
                # What a /predict_history request must send: these tables, with these optional columns.
                "trained_with": card.trained_with,
                "trained_columns": card.trained_columns,
                "data_window": {"first": stored["data_first_date"], "last": stored["data_last_date"]},
                "backtest": {
                    "cutoff": stored["backtest_cutoff"],
                    "horizon_days": card.backtest_horizon_days,
                    "metrics": card.backtest,
                    "baselines": card.baselines,
                },
                "targeting_thresholds": card.targeting_thresholds,
                "textbook_base": card.textbook_base,
                "output_semantics": output_semantics(card.horizon_days, card.value_unit),
            },
            "scores": {
                "path": str(self.scores.path),
                "customers": len(self.scores),
                "as_of": list(self.scores.as_of),
                "model_versions": list(self.scores.model_versions),
            },
            "loaded_at": self.loaded_at,
        }


class ReloadSignal:
    """`POST /admin/reload` reaches one worker; this tells the others to check too.

    A counter in a file next to the score table (`<scores>.reload`), which every worker of every
    server reading that table can see: `send` increments it, `received` is True once per change.
    """

    def __init__(self, path: Path):
        self.path = path
        self._seen = self._read()

    def send(self) -> None:
        value = self._read() + 1
        try:
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(str(value))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot tell the other workers to reload (%s); they will on their next check", exc)
            return
        self._seen = value

    def received(self) -> bool:
        value = self._read()
        if value == self._seen:
            return False
        self._seen = value
        return True

    def _read(self) -> int:
        try:
            return int(self.path.read_text() or 0)
        except (OSError, ValueError):
            return 0


class ServingState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.current: Serving | None = None
        # Why the last load or reload failed (None after a success): what a 503 tells the caller.
        self.problem: str | None = None
        self._lock = threading.Lock()
        scores = settings.serve.scores
        self.reload_signal = ReloadSignal(scores.with_name(f"{scores.name}.reload"))
        # What routes derive from the score table alone (campaign lists, economics), by name, with the
        # key of the table it was derived from (serving.routes.per_scores).
        self.derived: dict[str, tuple[tuple, Any]] = {}

    @functools.cached_property
    def registry(self) -> Registry:
        # Made on first use, in `load`, while the score table is read: the store's client imports and
        # sets up its database layer (0.6 s with a SQLite store), which then overlaps with the read.
        return Registry(self.settings.mlflow)

    def load(self) -> Serving:
        """Load the champion and the score table; raises ModelNotFound, ScoresUnavailable or StoreUnavailable."""
        # Reading a large score table and loading the model overlap: start-up time is what a deploy waits for.
        with ThreadPoolExecutor(1) as pool:
            scores_future = pool.submit(ScoreTable.load, self.settings.serve.scores)
            # By number, not by alias: the alias may move between looking it up and loading, and the
            # version reported must be the one that answers.
            model = self.registry.load_version(self.registry.champion_version())
            scores = scores_future.result()
        self.current = Serving(model, scores)
        return self.current

    def check(self) -> bool:
        """Load or reload (`reload_if_changed`); True when something new is served. A failure is logged
        and kept in `problem`, never raised: the current pair, if any, keeps serving."""
        still = "nothing yet" if self.current is None else "the current model"
        try:
            changed = self.reload_if_changed()
        except (ModelNotFound, ScoresUnavailable, StoreUnavailable) as exc:
            log.error("cannot load, serving %s; will retry: %s", still, exc)
            self.problem = str(exc)
            return False
        except Exception as exc:  # noqa: BLE001 - an unexpected failure must not stop the checks
            log.exception("load check failed; serving %s", still)
            self.problem = (
                f"loading failed unexpectedly ({type(exc).__name__}; the service log has the details)"
            )
            return False
        self.problem = None
        return changed

    def reload_if_changed(self) -> bool:
        """Load a new champion or score table if there is one; True when something was swapped in.

        Raises ModelNotFound or ScoresUnavailable when the new pair cannot be loaded; the current
        pair keeps serving.
        """
        with self._lock:
            current = self.current
            if current is None:
                self.load()
                return True
            version = self.registry.champion_version()
            mtime = (
                self.settings.serve.scores.stat().st_mtime if self.settings.serve.scores.exists() else None
            )
            if version == current.model.version and mtime == current.scores.mtime:
                return False
            model = current.model if version == current.model.version else self.registry.load_version(version)
            scores = (
                current.scores
                if mtime == current.scores.mtime
                else ScoreTable.load(self.settings.serve.scores)
            )
            self.current = Serving(model, scores)
            log.info(
                "worker %d: serving model v%s with %d scored customers",
                os.getpid(),
                model.version,
                len(scores),
            )
            return True
