"""Paired differences over seeds, with 95% intervals: the one rule the examples, their
reports and the documentation use before they call one arm better than another.

Two arms run with the same seed share their data order, augmentation and (where the shapes
match) initial weights, so their difference at each seed is paired. The interval is
Student's t over those per-seed differences:

    mean(d) ± t(0.975, n - 1) * sd(d) / sqrt(n)

and an arm is "better" (or "worse") only when the interval excludes 0; otherwise "no
difference shown" (the CIFAR-10 comparison says "tie"). With one seed there is no interval.

Pure Python (no NumPy or SciPy), so the documentation build can import it.

    >>> d = paired_difference({0: 0.84, 1: 0.85, 2: 0.86}, {0: 0.80, 1: 0.80, 2: 0.81})
    >>> d.verdict()
    'better'
"""

import dataclasses
import math

CONFIDENCE = 0.95


def t_two_sided_probability(t, df):
    """P(|T| <= t) for Student's t with `df` (a positive integer) degrees of freedom.

    Exact for integer `df` (the closed forms in Abramowitz and Stegun 26.7.3-4).
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"`df` must be a positive integer. Received: df={df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    term, total = 1.0, 1.0
    if df % 2:  # Odd: (2/pi) * (theta + sin cos (1 + 2/3 cos^2 + ...)).
        if df == 1:
            return 2 * theta / math.pi
        for k in range(3, df - 1, 2):
            term *= (k - 1) / k * cos2
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    for k in range(2, df - 1, 2):  # Even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...).
        term *= (k - 1) / k * cos2
        total += term
    return math.sin(theta) * total


def t_quantile(confidence, df):
    """The t with P(|T| <= t) = `confidence` (0.95 gives 12.706 at df=1, 1.96 as df grows)."""
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1). Received: confidence={confidence}")
    low, high = 0.0, 1.0
    while t_two_sided_probability(high, df) < confidence:
        high *= 2
    for _ in range(100):  # Bisection: the probability rises with t.
        middle = (low + high) / 2
        low, high = (
            (middle, high)
            if t_two_sided_probability(middle, df) < confidence
            else (
                low,
                middle,
            )
        )
    return (low + high) / 2


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """a - b paired by seed: the differences, their mean and its 95% interval.

    Attributes:
        differences: `{seed: a - b}` for the seeds both arms ran, in seed order.
        mean: their mean.
        low, high: the t interval's ends; None with fewer than two seeds.
    """

    differences: dict
    mean: float
    low: float | None
    high: float | None

    @property
    def seeds(self):
        return len(self.differences)

    def verdict(self, better="better", worse="worse", same="no difference shown"):
        """`better` or `worse` when the interval excludes 0, else `same` (also for one seed)."""
        if self.low is None:
            return same
        if self.low > 0:
            return better
        if self.high < 0:
            return worse
        return same

    def text(self, scale=100, digits=1, unit=" points"):
        """E.g. "+0.5 points (95% interval -5.6 to +6.6, 2 seeds)", values times `scale`."""
        mean = _signed(scale * self.mean, digits) + unit
        if self.low is None:
            return f"{mean} (1 seed, no interval)"
        return (
            f"{mean} (95% interval {_signed(scale * self.low, digits)} to "
            f"{_signed(scale * self.high, digits)}, {self.seeds} seeds)"
        )


def _signed(value, digits):
    """`value` with its sign, "+0.0" rather than "-0.0" when it rounds to zero."""
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def paired_difference(a, b, confidence=CONFIDENCE):
    """a - b paired by seed, with a t interval over the per-seed differences.

    Args:
        a, b: `{seed: value}` for each arm; only the seeds both have are paired.
        confidence: the interval's coverage, 0.95 by default.

    Returns:
        A `PairedDifference`.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"The arms share no seed. Received seeds {sorted(a)} and {sorted(b)}")
    differences = {seed: a[seed] - b[seed] for seed in seeds}
    values = list(differences.values())
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return PairedDifference(differences, mean, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return PairedDifference(differences, mean, mean - half, mean + half)


def mean_and_sd(values):
    """`(mean, sample standard deviation)`; the sd is None for one value."""
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
