"""How long a repair takes: a linear model per action, calibrated on measured repairs.

Before any repair has run, the documented defaults apply (seconds = base + per
message + per MB). With three or more measured repairs of an action, the model of
that action is scaled by measured / predicted time over those repairs: the shape of
the cost stays, its level follows the real storage.
"""

from __future__ import annotations

from dataclasses import dataclass

# (base seconds, seconds per message, seconds per MB), before calibration
DEFAULTS: dict[str, tuple[float, float, float]] = {
    "cache-purge": (0.5, 0.0, 0.01),
    "index-rebuild": (2.0, 0.002, 0.05),
    "force-resync": (3.0, 0.004, 0.08),
    "storage-rebuild": (10.0, 0.01, 0.2),
}
MIN_SAMPLES = 3


def _predict(coefficients: tuple[float, float, float], messages: int, size: int) -> float:
    base, per_message, per_mb = coefficients
    return max(0.1, base + per_message * messages + per_mb * size / 1e6)


@dataclass(frozen=True)
class CostModel:
    coefficients: dict[str, tuple[float, float, float]]
    calibrated: frozenset[str] = frozenset()

    def seconds(self, action: str, messages: int, size: int) -> float:
        return _predict(self.coefficients.get(action, DEFAULTS["index-rebuild"]), messages, size)

    @classmethod
    def calibrate(cls, samples: dict[str, list[tuple[int, int, float]]]) -> CostModel:
        """Scale each action with enough samples of (messages, bytes, seconds)."""
        coefficients = dict(DEFAULTS)
        calibrated = set()
        for action, rows in samples.items():
            default = DEFAULTS.get(action, DEFAULTS["index-rebuild"])
            if len(rows) >= MIN_SAMPLES:
                predicted = sum(_predict(default, m, b) for m, b, _ in rows)
                factor = sum(s for _, _, s in rows) / predicted
                coefficients[action] = tuple(c * factor for c in default)  # type: ignore[assignment]
                calibrated.add(action)
        return cls(coefficients, frozenset(calibrated))
