"""One configuration object, read from one TOML file plus environment overrides.

Precedence (highest first): values passed in code (the CLI's options), environment variables,
the TOML file, the defaults below. The file is `clv.toml` in the working directory, or the path
in `CLV_CONFIG`. Environment variables are `CLV_<SECTION>__<FIELD>` (for example
`CLV_TRAIN__HORIZON_DAYS=180`), plus two conventional names: `MLFLOW_TRACKING_URI` and
`CLV_API_KEYS` (`key1:app,key2:marketer`).

Only `load_settings` reads the environment; everything else receives the settings explicitly.
A leaf: it imports no package of this project, so every stage and the command line may import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_DIR = Path.cwd()
DEMO_DIR = Path("data/demo")
# The demo shop's acquisition spend (demo/shop.py writes it beside the tables).
DEMO_SPEND = DEMO_DIR / "spend.csv"


def invalid(message: str) -> PydanticCustomError:
    """The error a settings check raises (a ValueError): pydantic shows its message as it is, like its own
    ("Input should be greater than 0"), where a plain ValueError's gets the prefix "Value error, "."""
    # The message goes in as context, not as the template, so braces in a value cannot break the formatting.
    return PydanticCustomError("invalid_setting", "{message}", {"message": message})


class DataSettings(BaseModel):
    """Where the shop's data lives and how its columns map onto the data contract."""

    model_config = ConfigDict(extra="forbid")

    # File paths, or for the Spark engine anything Spark reads (a directory, a glob, s3a://...).
    transactions: str | None = None
    events: str | None = None
    customers: str | None = None
    # Contract column -> the shop's column, e.g. {"customer_id": "CustomerID", "amount": "Revenue"}.
    mapping: dict[str, str] = Field(default_factory=dict)
    # strptime format for timestamps that are not ISO 8601, e.g. "%d/%m/%Y %H:%M".
    timestamp_format: str | None = None

    @property
    def configured(self) -> bool:
        return self.transactions is not None

    def with_demo_fallback(self) -> DataSettings:
        """The configured data, or the demo shop in `data/demo` when nothing is configured."""
        if self.configured or not (DEMO_DIR / "transactions.parquet").exists():
            return self
        return self.model_copy(
            update={
                "transactions": str(DEMO_DIR / "transactions.parquet"),
                "events": str(DEMO_DIR / "events.parquet"),
                "customers": str(DEMO_DIR / "customers.parquet"),
                "mapping": {},
                "timestamp_format": None,
            }
        )


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(365, gt=0, le=3650)
    # Rolling origin: cut-offs every `snapshot_spacing_days` back from the last complete window, up to
    # `n_snapshots` overlapping the validation window and as many before it (training/windows.py).
    snapshot_spacing_days: int = Field(30, gt=0)
    n_snapshots: int = Field(6, ge=1, le=24)
    min_history_days: int = Field(90, ge=0)
    # Gross margin as a fraction of revenue; when set, scores carry `predicted_profit`.
    margin: float | None = Field(None, gt=0, le=1)
    # Yearly discount rate applied to predicted future value.
    discount_rate: float = Field(0.0, ge=0, lt=1)
    # Metric the promotion gate compares (higher is better).
    promotion_metric: Literal["spearman", "normalized_gini", "top_decile_capture"] = "spearman"
    interval_coverage: float = Field(0.8, gt=0, lt=1)
    seed: int = 42


class TargetingSettings(BaseModel):
    """Segment lines; see models/targeting.py for the rules they feed."""

    model_config = ConfigDict(extra="forbid")

    # Value lines are quantiles of the scored base: "high value" = predicted CLV in the top 20%.
    high_value_quantile: float = Field(0.8, gt=0, lt=1)
    valuable_history_quantile: float = Field(0.8, gt=0, lt=1)
    # Risk lines are absolute: at risk = churn probability at or above this, or overdue (below).
    at_risk_churn: float = Field(0.5, gt=0, lt=1)
    # Overdue = no order for more than this many times the customer's usual gap between orders.
    overdue_factor: float = Field(2.0, gt=1)
    # An overdue customer is at risk only with at least this churn probability (the model's word counts).
    overdue_churn: float = Field(0.25, gt=0, lt=1)
    lapsed_p_alive: float = Field(0.3, gt=0, lt=1)
    # New = one purchase so far, at most this many days ago: the segment new and the welcome campaign list.
    new_customer_days: int = Field(60, gt=0)


class CrossSellSettings(BaseModel):
    """Cross-sell suggestions (models/cross_sell.py)."""

    model_config = ConfigDict(extra="forbid")

    # Suggestions per customer (the backtest's k).
    top_k: int = Field(3, ge=1, le=20)
    # A customer buys an item regularly once it is in this many of her orders; such items are not suggested.
    regular_orders: int = Field(2, ge=1)
    # Customers who must have bought both items for a co-purchase rule to be used.
    min_pair_customers: int = Field(10, ge=1)
    # Items a customer viewed or carted in this many days up to the cut-off, and did not buy since, are
    # evidence for suggesting them (when events carry the item column; features/interest.py).
    behaviour_days: int = Field(30, ge=1, le=3650)
    # Use that evidence in the served suggestions; the backtest reports both either way.
    behaviour: bool = True


CAMPAIGN_NAMES = (
    "welcome",
    "birthday",
    "anniversary",
    "abandoned_cart",
    "win_back",
    "upsell",
    "cross_sell",
    "promo",
)
# Assumed share of contacted customers who place the order a campaign is for; set them from your own results.
DEFAULT_RESPONSE_RATES = {
    "welcome": 0.10,
    "birthday": 0.05,
    "anniversary": 0.05,
    "abandoned_cart": 0.15,
    "win_back": 0.03,
    "upsell": 0.05,
    "cross_sell": 0.05,
    "promo": 0.03,
}


class CampaignSettings(BaseModel):
    """Lifecycle campaign lists (models/campaigns.py): windows, spend cap and response rates. The welcome
    list has no window of its own: it takes the segment new ([targeting] new_customer_days)."""

    model_config = ConfigDict(extra="forbid")

    # Birthday and anniversary: in the next this many days after as_of.
    upcoming_days: int = Field(30, ge=1, le=366)
    # Abandoned cart: a cart or checkout at most this many days before as_of with no order after it.
    cart_days: int = Field(7, ge=1, le=365)
    # Maximum spend per contact = this share of the customer's predicted margin ([train] margin x CLV), and at
    # most the contact's expected value (models/campaigns.py).
    spend_share: float = Field(0.1, gt=0, le=1)
    # Per campaign: the share of contacted customers assumed to place the order (ranks the lists).
    response_rates: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RESPONSE_RATES))

    @model_validator(mode="before")
    @classmethod
    def _welcome_days_removed(cls, value: Any) -> Any:
        # Named with its replacement rather than as "not a setting": an old clv.toml had it, and the fix is
        # a move to [targeting], not just a deletion.
        if isinstance(value, dict) and "welcome_days" in value:
            raise invalid(
                "welcome_days no longer exists: the welcome list takes the segment new (action "
                "welcome_series), whose line is [targeting] new_customer_days (default 60). Fix: remove "
                "welcome_days, and set new_customer_days in [targeting] to the window you want for both"
            )
        return value

    @field_validator("response_rates")
    @classmethod
    def _known_campaigns(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in value if name not in CAMPAIGN_NAMES]
        if unknown:
            raise invalid(f"unknown campaign {', '.join(unknown)}; campaigns are {', '.join(CAMPAIGN_NAMES)}")
        bad = [name for name, rate in value.items() if not 0 <= rate <= 1]
        if bad:
            raise invalid(f"response rates are shares from 0 to 1; fix {', '.join(bad)}")
        return {**DEFAULT_RESPONSE_RATES, **value}


class EconomicsSettings(BaseModel):
    """Acquisition economics (models/economics.py)."""

    model_config = ConfigDict(extra="forbid")

    # Acquisition spend per channel and month (CSV or Parquet: channel, month YYYY-MM, spend).
    spend: str | None = None
    # Retention cost per customer (currency), subtracted in profit CLV.
    retention_cost: float = Field(0.0, ge=0)


class MlflowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = f"sqlite:///{PROJECT_DIR / 'mlflow.db'}"
    experiment: str = "clv"
    registered_model: str = "clv"
    champion_alias: str = "champion"


Role = Literal["app", "marketer", "admin"]
ROLES = ("app", "marketer", "admin")


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Loopback unless told otherwise: the service is for apps on this machine or behind a proxy.
    host: str = "127.0.0.1"
    port: int = Field(3000, gt=0, lt=65536)
    # Worker processes, each with its own copy of the model and score table (benchmarks/serving.py).
    workers: int = Field(2, ge=1, le=64)
    scores: Path = Path("artifacts/scores.parquet")
    max_batch: int = Field(1000, gt=0)
    max_history_rows: int = Field(5000, gt=0)
    # Seconds between checks for a new champion; 0 disables the check.
    reload_seconds: int = Field(60, ge=0)
    # API key -> role. Set through `CLV_API_KEYS="key1:app,key2:marketer"` rather than in a committed file.
    api_keys: dict[str, Role] = Field(default_factory=dict)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_api_keys(value)
        return value


def parse_api_keys(text: str) -> dict[str, str]:
    """Parse `key1:app,key2:marketer` into {key: role}; a malformed entry raises ValueError (`invalid`)."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, sep, role = entry.rpartition(":")
        if not sep or not key:
            raise invalid(
                f"API key entry {len(keys) + 1} is not of the form KEY:ROLE (roles: app, marketer, admin)"
            )
        if role not in ROLES:
            # Name the entry by position, never by its key: keys are secrets.
            raise invalid(f"API key entry {len(keys) + 1} has role {role!r}; roles are {', '.join(ROLES)}")
        keys[key] = role
    return keys


class EngineSettings(BaseModel):
    """Where feature and label queries run: DuckDB on this machine, or a Spark cluster (README, Scaling out)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["duckdb", "spark"] = "duckdb"
    # Spark's master URL: local[*] (every core of this machine), spark://host:7077, yarn, k8s://...
    master: str = "local[*]"
    # Any Spark setting, e.g. {"spark.driver.memory" = "8g", "spark.sql.shuffle.partitions" = "400"}.
    spark_conf: dict[str, str] = Field(default_factory=dict)


class Settings(BaseSettings):
    data: DataSettings = Field(default_factory=DataSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    targeting: TargetingSettings = Field(default_factory=TargetingSettings)
    cross_sell: CrossSellSettings = Field(default_factory=CrossSellSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    economics: EconomicsSettings = Field(default_factory=EconomicsSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)

    model_config = SettingsConfigDict(env_prefix="CLV_", env_nested_delimiter="__", extra="forbid")

    def with_demo_fallback(self) -> Settings:
        """These settings, with the demo shop in `data/demo` as `[data]` when no data is configured
        (`DataSettings.with_demo_fallback`), and then its spend file as `[economics] spend` unless one
        is configured: the demo's economics need no flags. Unchanged when the demo shop is not there."""
        data = self.data.with_demo_fallback()
        if data == self.data:
            return self
        economics = self.economics
        if economics.spend is None and DEMO_SPEND.is_file():
            economics = economics.model_copy(update={"spend": str(DEMO_SPEND)})
        return self.model_copy(update={"data": data, "economics": economics})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _config_path() -> Path | None:
    explicit = os.environ.get("CLV_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"CLV_CONFIG points to {path}, which does not exist")
        return path
    default = Path("clv.toml")
    return default if default.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read clv.toml and the environment once; `overrides` are nested dicts per section."""
    conventional: dict[str, dict[str, Any]] = {}
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        conventional.setdefault("mlflow", {})["tracking_uri"] = uri
    if keys := os.environ.get("CLV_API_KEYS"):
        try:
            conventional.setdefault("serve", {})["api_keys"] = parse_api_keys(keys)
        except ValueError as exc:
            raise ValueError(f"CLV_API_KEYS: {exc}") from None
    settings = Settings()
    for section, values in [*conventional.items(), *overrides.items()]:
        current = getattr(settings, section)
        merged = {**current.model_dump(), **{k: v for k, v in values.items() if v is not None}}
        settings = settings.model_copy(update={section: type(current).model_validate(merged)})
    return settings
