"""How long a forward pass takes, learnt from the passes run: a fixed part per pass and a part
per character (a text costs its characters plus ``TEXT_OVERHEAD``), fitted by least squares
over the recent passes. The engine sizes bulk passes with it, so a pass keeps to a compute
budget whatever the model and machine.
"""

from __future__ import annotations

TEXT_OVERHEAD = 32  # a text's cost beyond its characters (special tokens, per-row work)
FORGET = 0.95  # weight a pass keeps per later pass: the fit follows a machine that gets busy


def text_cost(text: str, read: int | None = None) -> int:
    """A text's share of a pass, in cost units: its characters, or the ``read`` first ones
    when the model reads no more of it (a query's first window)."""
    return min(len(text), read if read is not None else len(text)) + TEXT_OVERHEAD


class PassCost:
    """``seconds = fixed + per_unit * units``, fitted over the passes observed."""

    def __init__(self) -> None:
        self._n = self._x = self._y = self._xx = self._xy = 0.0

    def observe(self, units: int, seconds: float) -> None:
        self._n = FORGET * self._n + 1
        self._x = FORGET * self._x + units
        self._y = FORGET * self._y + seconds
        self._xx = FORGET * self._xx + units * units
        self._xy = FORGET * self._xy + units * seconds

    def fit(self) -> tuple[float, float] | None:
        """(fixed seconds, seconds per unit); None before the first pass. Passes all of one
        size give no slope: the whole time is then taken as per unit (which overstates it, so
        the next pass is smaller, not longer, than the budget)."""
        if self._n == 0 or self._x <= 0:
            return None
        spread = self._n * self._xx - self._x * self._x
        if spread > 1e-9 * self._n * self._xx:
            per_unit = (self._n * self._xy - self._x * self._y) / spread
            fixed = (self._y - per_unit * self._x) / self._n
            if per_unit > 0 and fixed >= 0:
                return fixed, per_unit
        return 0.0, self._y / self._x

    def units_within(self, seconds: float) -> float:
        """How many cost units a pass may hold to take about ``seconds`` (none before the first
        pass: the caller takes one text, and learns from it what more would cost)."""
        fit = self.fit()
        if fit is None:
            return 0.0
        fixed, per_unit = fit
        return max(seconds - fixed, 0.0) / per_unit
