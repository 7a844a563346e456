"""The Fellegi–Sunter model: per comparison level, m = P(level | same person) and
u = P(level | different people); the prior λ = P(same person) among blocked pairs;
term frequencies of names; and the two decision thresholds.

A model is data: it is saved as a versioned JSON file (`to_json`/`from_json`)
with the fingerprint of the data it was trained on and the date, so any link can
be traced back to the model that made it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from identity_index.blocking import DEFAULT_RULES
from identity_index.comparisons import BY_NAME, COMPARISONS

FORMAT = "hub-identity-model/1"
TF_CLAMP = 5.0  # bits: a rare name counts for more, but never more than this


class ModelFileError(ValueError):
    """A model file is unreadable, of another format, or names unknown comparisons."""


@dataclass(frozen=True)
class LevelParams:
    m: tuple[float, ...]
    u: tuple[float, ...]

    def weight(self, level: int) -> float:
        return math.log2(self.m[level] / self.u[level])


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: ≥ upper links automatically, ≥ lower goes to clerical review."""

    upper: float = 0.95
    lower: float = 0.50

    def __post_init__(self) -> None:
        if not 0.0 < self.lower <= self.upper < 1.0:
            raise ValueError(f"thresholds need 0 < lower ≤ upper < 1, got {self.lower}, {self.upper}")


@dataclass(frozen=True)
class Model:
    params: dict[str, LevelParams]
    prior: float
    thresholds: Thresholds = Thresholds()
    blocking_rules: tuple[str, ...] = DEFAULT_RULES
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    tf_default: dict[str, float] = field(default_factory=dict)
    version: str = "default"
    trained_at: str | None = None
    data_fingerprint: str | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def tf_adjustment(self, comparison: str, value: str) -> float:
        """Extra bits for an exact match on `value`: log2(u_exact / frequency of value)."""
        table = self.tf.get(comparison)
        if table is None or not value:
            return 0.0
        freq = table.get(value, self.tf_default.get(comparison, 0.0))
        if freq <= 0.0:
            return 0.0
        exact_u = self.params[comparison].u[0]
        return max(-TF_CLAMP, min(TF_CLAMP, math.log2(exact_u / freq)))

    def with_thresholds(self, upper: float, lower: float) -> Model:
        return replace(self, thresholds=Thresholds(upper, lower))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": self.version, "trained_at": self.trained_at,
            "data_fingerprint": self.data_fingerprint, "prior": self.prior,
            "thresholds": {"upper": self.thresholds.upper, "lower": self.thresholds.lower},
            "blocking_rules": list(self.blocking_rules),
            "comparisons": {name: {"levels": list(BY_NAME[name].levels), "m": list(p.m), "u": list(p.u)}
                            for name, p in self.params.items()},
            "tf": self.tf, "tf_default": self.tf_default, "training": self.training,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        if data.get("format") != FORMAT:
            raise ModelFileError(f"model format {data.get('format')!r}: expected {FORMAT!r}")
        params = {}
        for name, spec in data["comparisons"].items():
            comparison = BY_NAME.get(name)
            if comparison is None:
                raise ModelFileError(f"model names unknown comparison {name!r}")
            if tuple(spec["levels"]) != comparison.levels:
                raise ModelFileError(f"comparison {name!r}: levels {spec['levels']} differ from "
                                     f"this version's {list(comparison.levels)}; retrain the model")
            params[name] = LevelParams(tuple(spec["m"]), tuple(spec["u"]))
        t = data.get("thresholds", {})
        return cls(params=params, prior=float(data["prior"]),
                   thresholds=Thresholds(float(t.get("upper", 0.95)), float(t.get("lower", 0.5))),
                   blocking_rules=tuple(data.get("blocking_rules", DEFAULT_RULES)),
                   tf=data.get("tf", {}), tf_default=data.get("tf_default", {}),
                   version=data.get("version", "unknown"), trained_at=data.get("trained_at"),
                   data_fingerprint=data.get("data_fingerprint"), training=data.get("training", {}))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: {exc}") from exc
        return cls.from_json(data)


# Priors for a hub that has not been trained yet: plausible m and u per level, chosen so
# that a name + date-of-birth match links and a lone name match does not.
DEFAULT_PARAMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "given": ((0.84, 0.05, 0.04, 0.02, 0.01, 0.01, 0.03), (0.01, 0.001, 0.003, 0.02, 0.01, 0.0001, 0.9559)),
    "family": ((0.82, 0.06, 0.05, 0.02, 0.01, 0.04), (0.005, 0.0005, 0.002, 0.02, 0.0001, 0.9724)),
    "dob": ((0.88, 0.02, 0.06, 0.02, 0.02), (0.0003, 0.00002, 0.01, 0.003, 0.98668)),
    "sex": ((0.98, 0.02), (0.5, 0.5)),
    "address": ((0.6, 0.1, 0.1, 0.2), (0.001, 0.0005, 0.05, 0.9485)),
    "nhs": ((0.995, 0.005), (0.00001, 0.99999)),
    "upn": ((0.99, 0.01), (0.00001, 0.99999)),
    "phone": ((0.7, 0.3), (0.0005, 0.9995)),
}


def default_model() -> Model:
    params = {c.name: LevelParams(*DEFAULT_PARAMS[c.name]) for c in COMPARISONS}
    return Model(params=params, prior=2e-4)
