"""The study's conclusions, drawn through `paired.py`: each arm against plain ReLU, paired
by seed, and issue 29's targets for the cures, checked mechanically.

Pure Python (json-level dicts in, dataclasses out; no NumPy, Keras or Matplotlib), so the
report (`report.py`) and the documentation's figures (`examples/figures.py`) can share it.

A run is a result dict of `trained.train_run` (`seed`, `learning_rate`, `test_accuracy`,
`history` with per-epoch `dead_fraction` and `inactive_fraction`, `train_seconds`,
`finished`; a cure's run adds `cure`, a revival's `held_out_logit_shift`, the guard's
`lr_reductions`).
"""

import calendar
import dataclasses
import time

import paired  # examples/ is on the path: examples/dying_relu.py, figures.py, the tests.

METRICS = ("test_accuracy", "dead_fraction", "inactive_fraction")
# Higher is better for accuracy, worse for the dead and inactive fractions.
HIGHER_IS_BETTER = {"test_accuracy": True, "dead_fraction": False, "inactive_fraction": False}


def value(run, key):
    """`test_accuracy`, or the last epoch's value of a history entry (None if absent)."""
    if key == "test_accuracy":
        return run.get("test_accuracy")
    values = run.get("history", {}).get(key)
    return values[-1] if values else None


def by_seed(runs, key):
    """`{seed: value}` of the runs that have `key`."""
    values = {run["seed"]: value(run, key) for run in runs}
    return {seed: v for seed, v in values.items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of an arm against its reference, paired by seed.

    Attributes:
        key: the metric (`METRICS`).
        mean, sd: the arm's mean and standard deviation over its seeds (sd None for one).
        difference: `paired.PairedDifference` arm - reference, or None with no common seed.
        verdict: "better", "worse" or "no difference shown" (for the fractions, fewer dead
            units is "better").
    """

    key: str
    mean: float | None
    sd: float | None
    difference: paired.PairedDifference | None

    @property
    def verdict(self):
        if self.difference is None:
            return "no common seed"
        if HIGHER_IS_BETTER[self.key]:
            return self.difference.verdict()
        return self.difference.verdict(better="worse", worse="better")


def compare(runs, reference, key):
    """`runs` against `reference` (both lists of runs of one cell) on `key`."""
    values, base = by_seed(runs, key), by_seed(reference, key)
    mean, sd = paired.mean_and_sd(values.values()) if values else (None, None)
    common = set(values) & set(base)
    difference = paired.paired_difference(values, base) if common else None
    return Comparison(key, mean, sd, difference)


def mean_sd_text(comparison, scale=100, digits=1, unit="%"):
    """ "40.2 ± 1.1%", "40.2%" for one seed, "-" for none."""
    if comparison.mean is None:
        return "-"
    text = f"{scale * comparison.mean:.{digits}f}"
    return (
        text if comparison.sd is None else f"{text} ± {scale * comparison.sd:.{digits}f}"
    ) + unit


def difference_text(comparison, digits=1):
    """ "+3.2 (+1.0 to +5.4) better": points, the 95% interval, the verdict."""
    d = comparison.difference
    if d is None:
        return "- (no common seed)"
    mean = paired._signed(100 * d.mean, digits)
    if d.low is None:
        return f"{mean} (1 seed, no interval) {comparison.verdict}"
    low, high = paired._signed(100 * d.low, digits), paired._signed(100 * d.high, digits)
    return f"{mean} ({low} to {high}) {comparison.verdict}"


# Time ------------------------------------------------------------------------------

NEAR_IN_TIME = 600  # Seconds: runs finished further apart are not "the same run" for time.


def finished_seconds(run):
    """The run's `finished` stamp ("2026-12-03 11:59:30 UTC") as seconds since the epoch."""
    return calendar.timegm(time.strptime(run["finished"], "%Y-%m-%d %H:%M:%S UTC"))


@dataclasses.dataclass(frozen=True)
class TimeRatio:
    """Median over the seeds both ran of the arm's training time over ReLU's rerun.

    Attributes:
        ratio: the median, or None with no pair.
        pairs: how many (rate, seed) pairs it is over.
        apart: the largest gap in seconds between the two runs' `finished` stamps.
    """

    ratio: float | None
    pairs: int
    apart: float

    def text(self):
        if self.ratio is None:
            return "-"
        near = "" if self.apart <= NEAR_IN_TIME else f" ({self.apart / 60:.0f} min apart)"
        return f"{self.ratio:.2f}x{near}"


def _median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] + values[(n - 1) // 2]) / 2


def time_ratio(runs, reference):
    """`TimeRatio` of `runs` over `reference` runs, paired by (learning rate, seed)."""
    base = {(r["learning_rate"], r["seed"]): r for r in reference}
    pairs = [(r, base.get((r["learning_rate"], r["seed"]))) for r in runs]
    pairs = [(r, b) for r, b in pairs if b and r.get("train_seconds") and b.get("train_seconds")]
    if not pairs:
        return TimeRatio(None, 0, 0.0)
    ratio = _median(r["train_seconds"] / b["train_seconds"] for r, b in pairs)
    stamped = [(r, b) for r, b in pairs if "finished" in r and "finished" in b]
    apart = max((abs(finished_seconds(r) - finished_seconds(b)) for r, b in stamped), default=0)
    return TimeRatio(ratio, len(pairs), float(apart))


# Revival: the held-out logit shift ---------------------------------------------------


def logit_shifts(runs):
    """`(largest max, mean of means)` of |delta logit| over every revival of `runs`, or None.

    A run's `held_out_logit_shift` is `{"images": n, "by_call": [{"max", "mean"}, ...]}`
    (`cures.py`) or the list itself.
    """
    calls = []
    for run in runs:
        shift = run.get("held_out_logit_shift")
        calls += shift.get("by_call", []) if isinstance(shift, dict) else shift or []
    if not calls:
        return None
    return max(c["max"] for c in calls), sum(c["mean"] for c in calls) / len(calls)


# The guard's lowerings ---------------------------------------------------------------


def lr_reductions(run):
    """How many times the guard lowered the rate in `run`: the lowerings the cures
    part stores (`guard.lowerings`), else `lr_reductions` or the lowered entries of a
    `guard_history` (`ReduceLROnHighUpdateRatio.history`); None if none is recorded."""
    if "guard" in run:
        return len(run["guard"]["lowerings"])
    if "lr_reductions" in run:
        return run["lr_reductions"]
    if "guard_history" in run:
        return sum(bool(row.get("lowered")) for row in run["guard_history"])
    return None


# Issue 29's targets ------------------------------------------------------------------

TARGET_SEEDS = 5  # The targets are over 5 seeds paired against plain ReLU.
HIGH_RATES = (1e-2, 3e-2)  # Where plain ReLU dies.
LOW_RATES = (1e-3, 3e-3)  # Where it trains.
GUARD_GAIN = 0.10  # The guard: at least 10 points above plain ReLU at HIGH_RATES ...
GUARD_VS_SCHEDULE = 0.02  # ... and no more than 2 points below the schedule.
MAX_TIME_RATIO = 1.05  # Revival and the guard: at most 5% more training time.


@dataclasses.dataclass(frozen=True)
class Target:
    """One target: `status` is "met", "not met" or "not measured"; `figures` says why."""

    name: str
    status: str
    figures: str

    def line(self):
        return f"- {self.name}: **{self.status}**. {self.figures}"


def _rate_text(lr):
    return f"{lr:g}"


def _cell(cells, arm, lr):
    return cells.get(arm, {}).get(lr, [])


def _seeds_short(cells, arm, lr, reference="relu"):
    """Why `arm` at `lr` cannot be judged yet (too few paired seeds), or None."""
    common = {r["seed"] for r in _cell(cells, arm, lr)} & {
        r["seed"] for r in _cell(cells, reference, lr)
    }
    if len(common) < TARGET_SEEDS:
        return (
            f"{arm} at {_rate_text(lr)}: {len(common)} seeds paired with {reference} "
            f"of {TARGET_SEEDS}"
        )
    return None


def check_targets(cells, reruns):
    """Issue 29's targets as `Target`s.

    Args:
        cells: `{arm: {lr: [runs]}}` with plain ReLU's runs (the reference) under "relu".
        reruns: plain ReLU's runs made beside the cures (the time reference).
    """
    targets = []

    def short(*checks):
        missing = [m for m in checks if m]
        return "; ".join(missing) if missing else None

    # ReviveDeadUnits at its defaults.
    for lr in HIGH_RATES:
        name = f"`ReviveDeadUnits` at {_rate_text(lr)}: fewer dead units and higher accuracy"
        missing = short(_seeds_short(cells, "revive", lr))
        if missing:
            targets.append(Target(name, "not measured", missing))
            continue
        dead = compare(_cell(cells, "revive", lr), _cell(cells, "relu", lr), "dead_fraction")
        accuracy = compare(_cell(cells, "revive", lr), _cell(cells, "relu", lr), "test_accuracy")
        met = dead.difference.high is not None and dead.difference.high < 0
        met = met and accuracy.difference.low is not None and accuracy.difference.low > 0
        targets.append(
            Target(
                name,
                "met" if met else "not met",
                f"dead fraction {difference_text(dead)}, accuracy {difference_text(accuracy)} "
                "(points, 95% interval; both intervals must exclude 0 on the right side).",
            )
        )
    for lr in LOW_RATES:
        name = f"`ReviveDeadUnits` at {_rate_text(lr)}: no worse"
        missing = short(_seeds_short(cells, "revive", lr))
        if missing:
            targets.append(Target(name, "not measured", missing))
            continue
        dead = compare(_cell(cells, "revive", lr), _cell(cells, "relu", lr), "dead_fraction")
        accuracy = compare(_cell(cells, "revive", lr), _cell(cells, "relu", lr), "test_accuracy")
        met = dead.verdict != "worse" and accuracy.verdict != "worse"
        targets.append(
            Target(
                name,
                "met" if met else "not met",
                f"accuracy {difference_text(accuracy)}, dead fraction {difference_text(dead)}.",
            )
        )
    # The guard.
    for lr in HIGH_RATES:
        name = (
            f"The guard at {_rate_text(lr)}: at least {100 * GUARD_GAIN:.0f} points above plain "
            f"ReLU and within {100 * GUARD_VS_SCHEDULE:.0f} points of the schedule"
        )
        missing = short(
            _seeds_short(cells, "guard", lr), _seeds_short(cells, "guard", lr, "schedule")
        )
        if missing:
            targets.append(Target(name, "not measured", missing))
            continue
        gain = compare(_cell(cells, "guard", lr), _cell(cells, "relu", lr), "test_accuracy")
        gap = compare(_cell(cells, "guard", lr), _cell(cells, "schedule", lr), "test_accuracy")
        met = gain.difference.mean >= GUARD_GAIN and gap.difference.mean >= -GUARD_VS_SCHEDULE
        targets.append(
            Target(
                name,
                "met" if met else "not met",
                f"against plain ReLU {difference_text(gain)}; against the schedule "
                f"{difference_text(gap)} (points; the means are judged).",
            )
        )
    lr = LOW_RATES[0]
    name = f"The guard at {_rate_text(lr)}: never lowers the rate"
    runs = _cell(cells, "guard", lr)
    counts = {r["seed"]: lr_reductions(r) for r in runs}
    if len(runs) < TARGET_SEEDS or None in counts.values():
        unrecorded = sorted(s for s, n in counts.items() if n is None)
        targets.append(
            Target(
                name,
                "not measured",
                f"{len(runs)} seeds of {TARGET_SEEDS}"
                + (f"; no `lr_reductions` recorded for seeds {unrecorded}" if unrecorded else ""),
            )
        )
    else:
        lowered = {s: n for s, n in sorted(counts.items()) if n}
        targets.append(
            Target(
                name,
                "not met" if lowered else "met",
                f"lowerings per seed: {lowered}."
                if lowered
                else f"0 lowerings in {len(runs)} runs.",
            )
        )
    # Cost.
    for arm, label in (("revive", "`ReviveDeadUnits`"), ("guard", "The guard")):
        name = f"{label} costs at most {100 * (MAX_TIME_RATIO - 1):.0f}% of the training time"
        runs = [r for lr_runs in cells.get(arm, {}).values() for r in lr_runs]
        ratio = time_ratio(runs, reruns)
        if ratio.ratio is None:
            targets.append(Target(name, "not measured", "no run timed beside plain ReLU's rerun"))
            continue
        targets.append(
            Target(
                name,
                "met" if ratio.ratio <= MAX_TIME_RATIO else "not met",
                f"training time {ratio.text()} plain ReLU's (median over {ratio.pairs} runs "
                "paired by rate and seed).",
            )
        )
    return targets
