"""The typed keys of a pipeline step, read from YAML with one-line errors, and drawn from.

A step's YAML mapping is read key by key through `Keys`: each accessor checks the type and the
bounds and says, on failure, which file, which step and which key is wrong and what to write
instead. Keys left over at the end are unknown (with a suggestion when one is close).

Values:
- a probability `p` is a number in [0, 1]; 0 and 1 draw nothing from the generator;
- a range is a number (fixed) or `[LO, HI]`; a fixed value draws nothing, a range draws one
  uniform number rounded to 4 decimals (what the record stores is exactly what is applied);
- an integer range draws uniformly among the integers (odd ones only for kernel sizes);
- weights are a list of names (equal weights) or a mapping name -> weight >= 0 (relative:
  they need not sum to 1); a single name draws nothing.
Drawing nothing for fixed values keeps the shorthand `--blur/--noise/--jpeg` pipeline on
exactly the random stream srkit used before pipelines existed.
"""

from __future__ import annotations

import bisect
import difflib
import math
from dataclasses import dataclass, field

import numpy as np

from srdata.errors import UserError

REQUIRED = object()  # default of a key that must be given
DECIMALS = 4  # drawn floats are rounded to this many decimals


@dataclass(frozen=True)
class Where:
    """Where a key lives, for error messages: the file, the step number (1-based; nested steps
    as 5.2 = 2nd step of the 5th) and the op or block name."""

    file: str
    step: str = ""
    op: str = ""

    def error(self, key: str | None, problem: str) -> UserError:
        place = f"step {self.step} ({self.op})" if self.step else ""
        parts = [self.file] + [p for p in (place, key) if p]
        return UserError(": ".join(parts) + f": {problem}")

    def child(self, index: int, op: str = "") -> Where:
        step = f"{self.step}.{index}" if self.step else str(index)
        return Where(self.file, step, op)


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        if self.lo == self.hi:
            return float(self.lo)
        return round(float(rng.uniform(self.lo, self.hi)), DECIMALS)

    def draw_split_at_one(self, rng: np.random.Generator) -> float:
        """BasicSR's rule for the shape parameter beta: when the range contains 1, half of the
        draws come from [LO, 1] and half from [1, HI] (so narrow and wide shapes are equally
        likely; with LO = 1 half of the draws are exactly 1)."""
        if self.lo == self.hi or not self.lo <= 1 <= self.hi:
            return self.draw(rng)
        low_half = rng.random() < 0.5
        return Range(self.lo, 1.0).draw(rng) if low_half else Range(1.0, self.hi).draw(rng)


@dataclass(frozen=True)
class IntRange:
    lo: int
    hi: int
    odd: bool = False  # draw odd values only (kernel sizes)

    def draw(self, rng: np.random.Generator) -> int:
        if self.lo == self.hi:
            return int(self.lo)
        if self.odd:
            return int(self.lo + 2 * rng.integers(0, (self.hi - self.lo) // 2 + 1))
        return int(rng.integers(self.lo, self.hi + 1))


@dataclass(frozen=True)
class Weights:
    names: tuple[str, ...]  # only names with a weight > 0
    weights: tuple[float, ...]
    cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)  # running sums / total

    def __post_init__(self):
        total, running = sum(self.weights), 0.0
        sums = []
        for weight in self.weights:
            running += weight
            sums.append(running / total)
        object.__setattr__(self, "cumulative", tuple(sums))

    def draw(self, rng: np.random.Generator) -> str:
        if len(self.names) == 1:
            return self.names[0]
        return self.names[min(bisect.bisect_right(self.cumulative, rng.random()), len(self.names) - 1)]

    def __contains__(self, name: str) -> bool:
        return name in self.names


def fires(p: float, rng: np.random.Generator) -> bool:
    """Whether a step with probability p runs; p = 0 or 1 draws nothing."""
    if p >= 1:
        return True
    if p <= 0:
        return False
    return bool(rng.random() < p)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class Keys:
    """The keys of one YAML mapping, taken one at a time; `done()` rejects the rest."""

    def __init__(self, raw, where: Where, what: str = "a step"):
        if not isinstance(raw, dict):
            raise where.error(None, f"{what} must be a mapping of keys to values, got {_show(raw)}")
        self.raw = dict(raw)
        self.where = where
        self.known: list[str] = []

    def _take(self, key: str, default):
        self.known.append(key)
        if key in self.raw:
            return self.raw.pop(key), True
        if default is REQUIRED:
            typo = difflib.get_close_matches(key, [str(k) for k in self.raw], n=1, cutoff=0.6)
            if typo:
                raise self.where.error(typo[0], f"unknown key (did you mean {key!r}?)")
            raise self.where.error(key, "missing; this key is required")
        return default, False

    def prob(self, key: str, default: float = 1.0) -> float:
        value, given = self._take(key, default)
        if given and not (_is_number(value) and 0 <= value <= 1):
            raise self.where.error(key, f"{_show(value)} is not a probability; give a number from 0 to 1")
        return float(value)

    def range(self, key: str, default, lo: float, hi: float = math.inf, lo_open: bool = False,
              unit: str = "") -> Range | None:
        """A number or [LO, HI] within [lo, hi] (lo excluded when lo_open)."""
        value, given = self._take(key, default)
        if not given:
            return None if value is None else Range(*value)
        bound = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if math.isfinite(hi) else "")
        fix = f"give a number or [LO, HI] with LO <= HI, each {bound}{unit}"
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2 or not all(_is_number(v) for v in pair):
            raise self.where.error(key, f"{_show(value)} is not a number or a range; {fix}")
        a, b = (float(v) for v in pair)
        if a > b or (a <= lo if lo_open else a < lo) or b > hi:
            raise self.where.error(key, f"{_show(value)} is out of bounds; {fix}")
        return Range(a, b)

    def int_range(self, key: str, default, lo: int, hi: int, odd: bool = False) -> IntRange | None:
        value, given = self._take(key, default)
        if not given:
            return None if value is None else IntRange(*value, odd=odd)
        kind = "odd integer" if odd else "integer"
        fix = f"give an {kind} or [LO, HI] with {lo} <= LO <= HI <= {hi}"
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise self.where.error(key, f"{_show(value)} is not an {kind} or a range of them; {fix}")
        a, b = pair
        if not lo <= a <= b <= hi or (odd and (a % 2 == 0 or b % 2 == 0)):
            raise self.where.error(key, f"{_show(value)} is out of bounds; {fix}")
        return IntRange(a, b, odd)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value, given = self._take(key, default)
        if given and not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
            raise self.where.error(key, f"{_show(value)} is not an integer from {lo} to {hi}")
        return value

    def choice(self, key: str, default, names: tuple[str, ...]) -> str | None:
        value, given = self._take(key, default)
        if given and value not in names:
            raise self.where.error(key, f"{_show(value)} is not one of {', '.join(names)}")
        return value

    def weights(self, key: str, default, names: tuple[str, ...]) -> Weights | None:
        """A list of names or a mapping name -> weight (YAML keys such as 420 are read as text)."""
        value, given = self._take(key, default)
        if not given:
            return None if value is None else Weights(tuple(value), (1.0,) * len(value))
        fix = f"give a list of names or a mapping name: weight, names from {', '.join(names)}"
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = {name: 1.0 for name in value}
        if not isinstance(value, dict) or not value:
            raise self.where.error(key, f"{_show(value)} is not a list or mapping of names; {fix}")
        for name, weight in value.items():
            if str(name) not in names:
                raise self.where.error(key, f"{_show(name)} is not one of {', '.join(names)}")
            if not (_is_number(weight) and weight >= 0):
                raise self.where.error(key, f"weight of {name} is {_show(weight)}; weights are numbers >= 0")
        kept = {str(n): float(w) for n, w in value.items() if w > 0}
        if not kept:
            raise self.where.error(key, "every weight is 0; give at least one a weight above 0")
        ordered = [n for n in names if n in kept]
        return Weights(tuple(ordered), tuple(kept[n] for n in ordered))

    def anything(self, key: str, default):
        return self._take(key, default)[0]

    def done(self) -> None:
        for key in self.raw:
            close = difflib.get_close_matches(str(key), self.known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.where.error(str(key), f"unknown key{hint}; keys here: {', '.join(self.known)}")
