"""Collection campaigns: what the cloud tells a car to collect, validated before it is used.

Owns: the campaign document (pydantic v2, JSON on the retained topic `fleet/v1/<id>/config`), its
validation, and the version rule. A campaign says, per signal, how often to send it and how to
filter it (deadband, change-only), and which conditions trigger a full-rate capture window.
Leaves to others: running it (`edge_agent.collector`), receiving it (`edge_agent.agent`).

Version rule: a car only moves forward. A campaign whose version is not greater than the one it
runs is ignored (a retained message is redelivered on every reconnect, and an old one must not roll
a newer campaign back). The agent reports the version it runs in every check-in.

Example::

    {"campaign_id": "default", "version": 3, "base_rate_hz": 10, "flush_interval_s": 1.0,
     "signals": [{"path": "Vehicle.Speed", "period_ms": 1000, "deadband": 0.5}],
     "triggers": [{"name": "hard_brake", "condition": "Vehicle.Acceleration.Longitudinal < -0.4 * g",
                   "pre_s": 5, "post_s": 2, "min_interval_s": 30}]}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.signals import BY_PATH
from edge_agent import expression

MAX_CAMPAIGN_BYTES = 64 * 1024


class CampaignError(ValueError):
    """The campaign document is invalid; the agent keeps running its current campaign."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalRule(_Frozen):
    """Send `path` at most every `period_ms`; with a deadband, only when it moved by more than it."""

    path: str
    period_ms: int = Field(default=1000, ge=10, le=3_600_000)
    deadband: float = Field(default=0.0, ge=0.0)
    change_only: bool = False

    @field_validator("path")
    @classmethod
    def _known_signal(cls, path: str) -> str:
        if path not in BY_PATH:
            raise ValueError(f"{path!r} is not in the signal catalogue")
        return path


class TriggerRule(_Frozen):
    """When `condition` holds, send every signal of `signals` (default: all collected) at full
    rate from `pre_s` before to `post_s` after, at most once per `min_interval_s`."""

    name: str = Field(min_length=1, max_length=64)
    condition: str
    mode: Literal["rising_edge", "always"] = "rising_edge"
    pre_s: float = Field(default=5.0, ge=0.0, le=60.0)
    post_s: float = Field(default=2.0, ge=0.0, le=60.0)
    min_interval_s: float = Field(default=30.0, ge=0.0)
    signals: tuple[str, ...] | None = None

    @field_validator("condition")
    @classmethod
    def _parses(cls, text: str) -> str:
        tree = expression.parse(text)  # ExpressionError is a ValueError: pydantic reports it
        unknown = sorted(n for n in expression.names_in(tree) if n not in BY_PATH and n != expression.NEW_DTC)
        if unknown:
            raise ValueError(f"condition reads unknown names {unknown}")
        return text

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, paths: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if paths is not None:
            unknown = [p for p in paths if p not in BY_PATH]
            if unknown:
                raise ValueError(f"signals not in the catalogue: {unknown}")
        return paths

    @property
    def tree(self) -> expression.Node:
        return expression.parse(self.condition)


class Campaign(_Frozen):
    """One versioned campaign. `flush_interval_s` is the durability (fsync) interval, at most 1 s;
    periodic data is published every `batch_interval_s` (longer batches compress better; trigger
    windows and DTCs are published as soon as they are complete)."""

    campaign_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=0)
    base_rate_hz: float = Field(default=10.0, gt=0.0, le=100.0)
    flush_interval_s: float = Field(default=1.0, ge=0.05, le=1.0)
    batch_interval_s: float = Field(default=10.0, ge=0.05, le=300.0)
    signals: tuple[SignalRule, ...] = Field(min_length=1, max_length=256)
    triggers: tuple[TriggerRule, ...] = Field(default=(), max_length=32)

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        paths = [s.path for s in self.signals]
        if len(set(paths)) != len(paths):
            raise ValueError("a signal appears twice in the campaign")
        if self.batch_interval_s < self.flush_interval_s:
            raise ValueError("batch_interval_s must not be shorter than flush_interval_s")
        names = [t.name for t in self.triggers]
        if len(set(names)) != len(names):
            raise ValueError("two triggers share a name")
        return self

    @property
    def sampled_paths(self) -> tuple[str, ...]:
        """Every catalogue signal the source must read at the base rate (rules and conditions)."""
        seen = dict.fromkeys(s.path for s in self.signals)
        for trigger in self.triggers:
            seen.update(dict.fromkeys(n for n in expression.names_in(trigger.tree) if n in BY_PATH))
            seen.update(dict.fromkeys(trigger.signals or ()))
        return tuple(seen)

    @property
    def version_tag(self) -> str:
        return f"{self.campaign_id}@{self.version}"


def parse_campaign(payload: bytes | str) -> Campaign:
    """Validate a campaign document. Raises CampaignError with a readable reason."""
    if len(payload) > MAX_CAMPAIGN_BYTES:
        raise CampaignError(f"campaign larger than {MAX_CAMPAIGN_BYTES} bytes")
    try:
        return Campaign.model_validate_json(payload)
    except ValidationError as exc:
        raise CampaignError(str(exc)) from None


def supersedes(new: Campaign, current: Campaign | None) -> bool:
    """Whether `new` should replace `current` (versions only move forward)."""
    return current is None or new.version > current.version


def default_campaign(paths: tuple[str, ...] | None = None, *, period_ms: int = 1000) -> Campaign:
    """What a car runs before the cloud sends anything: every given signal once per period."""
    chosen = paths if paths is not None else tuple(BY_PATH)
    return Campaign(
        campaign_id="builtin",
        version=0,
        signals=tuple(SignalRule(path=p, period_ms=period_ms) for p in chosen),
    )
