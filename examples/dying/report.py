"""The dying-ReLU report: Markdown, plots and `resistance.json`, from the result files.

Reads `born_dead/*.json`, `trained/*.json`, `cures/*.json` and `gradients/*.json` under
the results folder (whatever exists: a partial run gives a partial report that says what
is missing) and writes:

- `report.md` (and, with `markdown_path`, that file below its hand-written preface);
- `plots/collapse_vs_depth.png`, `plots/born_dead_vs_depth.png`,
  `plots/initialization_vs_depth.png` (He normal against RAI, ReLU),
  `plots/dead_vs_epoch.png`, `plots/inactive_vs_epoch.png`,
  `plots/final_dead_vs_lr.png`, `plots/final_inactive_vs_lr.png`, `plots/accuracy_vs_lr.png`,
  `plots/cures.png`;
- `resistance.json`: how each variant fared in the trained-to-death part, for tables
  that say which variant to use. Its format:

  ```
  {"<variant>": {                     # registry names: relu, leaky_relu, prelu, ...
      "summary": "<short phrase>",    # e.g. "dies at lr 0.01: 50% dead, acc 35% (best 41%)"
      "learning_rates": [...],        # the sweep, ascending
      "dead_fraction": [...],         # final overall dead fraction, mean over seeds, per lr
      "inactive_fraction": [...],     # the same for inputs <= 0 (units a ReLU would lose)
      "test_accuracy": [...],         # final test accuracy, mean over seeds, per lr
      "seeds": n,                     # seeds per lr (the fewest)
      "dies_at": lr or null,          # lowest lr with dead_fraction >= DIES_ABOVE
      "stops_learning_at": lr or null # lowest lr with test accuracy <= STOPPED_BELOW
  }}
  ```

Every comparison goes through `verdicts.py` (and so `examples/paired.py`): each variant or
cure minus plain ReLU, paired by seed, with its 95% interval; "better" or "worse" only where
the interval excludes 0. The cures part also checks issue 29's targets (`verdicts.check_targets`:
met, not met, or not measured with what is missing).
"""

import os
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from cifar10.cli import read_result  # noqa: E402
from cifar10.report import kept_preface  # noqa: E402
from cifar10.train import write_json_atomically  # noqa: E402
from cifar10.train import write_text_atomically  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import verdicts  # noqa: E402
from .born_dead import ALONE  # noqa: E402
from .born_dead import INITIALIZED_ARMS  # noqa: E402
from .born_dead import VARIANTS  # noqa: E402

ORDER = (*VARIANTS, *ALONE)  # The variants' tables and plots; the RAI arms have their own.

PREFACE_END = "<!-- Generated below by `dying_relu.py --report-only`; edit above. -->"
DIES_ABOVE = 0.2  # Final overall dead fraction that counts as "dies" (the articles' 20%).
STOPPED_BELOW = 0.15  # Test accuracy at or below this: no better than chance (10%) by much.
KEEPS_TRAINING = 0.9  # "Keeps training": top-lr accuracy at least this share of the best.


# What a part's result file holds, at least (the report reads them): a file without them,
# cut short or edited, is named (`cli.ResultFileError`), not met as a KeyError.
_RUN = ("variant", "learning_rate", "seed", "config", "history", "test_accuracy")
RESULT_KEYS = {
    "born_dead": ("variant", "width", "depth", "config", "born_dead", "constant_at_init"),
    "trained": (*_RUN, "train_seconds"),
    "cures": (*_RUN, "train_seconds", "cure"),
    "gradients": (*_RUN, "steps_per_epoch", "gradients", "every_few_batches", "gradient_warnings"),
}
NORMS_FILE = "gradient_norms.json"  # In cures/, beside the runs: the clipnorm's measurement.


def _load(folder):
    """The result files in `folder` (a part's), checked against `RESULT_KEYS`; raises
    `cli.ResultFileError` (a ValueError) naming a damaged one."""
    required = RESULT_KEYS.get(Path(folder).name, ())
    paths = [p for p in sorted(Path(folder).glob("*.json")) if p.name != NORMS_FILE]
    return [read_result(p, required, redo="rerun that result") for p in paths]


def _order(names):
    return [v for v in ORDER if v in names]


def _style(variant):
    """A distinct marker and line per variant: ReLU and ReLU6 often coincide."""
    index = ORDER.index(variant)
    return {"marker": "os^vDxP*h<"[index], "linestyle": "-" if index % 2 == 0 else "--", "ms": 5}


def _percent(value):
    return "-" if value is None else f"{100 * value:.0f}%"


# Born dead -------------------------------------------------------------------------


def born_dead_tables(results):
    """`{width: {variant: {depth: result}}}` from the born-dead files."""
    table = defaultdict(lambda: defaultdict(dict))
    for result in results:
        table[result["width"]][result["variant"]][result["depth"]] = result
    return table


def plot_born_dead(table, path):
    figure, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 4), squeeze=False)
    for axis, width in zip(axes[0], sorted(table), strict=True):
        for variant in _order(table[width]):
            points = table[width][variant]
            depths = sorted(points)
            shares = [points[d]["born_dead"] for d in depths]
            axis.plot(depths, shares, label=variant, **_style(variant))
        axis.set(
            title=f"width {width}",
            xlabel="depth (hidden layers)",
            ylim=(-0.03, 1.03),
            ylabel="share born dead",
        )
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle("Born dead: a layer with every input <= 0 on the grid", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_collapse(table, path):
    widths = [
        w
        for w in sorted(table)
        if any("collapsed" in r for v in table[w].values() for r in v.values())
    ]
    if not widths:
        return False
    figure, axes = plt.subplots(1, len(widths), figsize=(6 * len(widths), 4.2), squeeze=False)
    for axis, width in zip(axes[0], widths, strict=True):
        for variant in _order(table[width]):
            points = {d: r for d, r in table[width][variant].items() if "collapsed" in r}
            depths = sorted(points)
            shares = [points[d]["collapsed"] for d in depths]
            axis.plot(depths, shares, label=variant, **_style(variant))
        axis.set(
            title=f"width {width}: fitted to |x|",
            xlabel="depth (hidden layers)",
            ylabel="share collapsed to a constant",
            ylim=(-0.03, 1.03),
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def born_dead_markdown(table):
    lines = []
    for width in sorted(table):
        variants = _order(table[width])
        depths = sorted({d for v in variants for d in table[width][v]})
        trained = any("collapsed" in table[width][v].get(d, {}) for v in variants for d in depths)
        runs = sorted(
            {table[width][v][d]["config"]["runs"] for v in variants for d in table[width][v]}
        )
        lines += [
            f"**Width {width}**: share of networks born dead at initialization"
            + (" / collapsed after training" if trained else "")
            + f" ({', '.join(map(str, runs))} initializations per point).",
            "",
        ]
        lines += _born_dead_table(table[width], variants, depths) + [""]
    crelu = [r for w in table for r in table[w].get("crelu", {}).values()]
    if crelu:
        constant = max(r["constant_at_init"] for r in crelu)
        lines += [
            "`crelu` (in a model of its own: it doubles each layer's width) counts as born dead "
            "by the same rule, a layer whose inputs are all <= 0, but CReLU passes those "
            "inputs on negated, so such a network is not constant: at most "
            f"{_percent(constant)} of its networks are constant at initialization at any point.",
            "",
        ]
    return lines


# Born dead: He normal against RAI --------------------------------------------------

# ReLU's arms by initialization, as the section names them.
INITIALIZATION_ARMS = {
    "relu": "He normal",
    "relu_rai": "RAI, keras_relu (kernel only, zero bias)",
    "relu_rai_row": "RAI, paper's row with bias",
}
# What Lu et al. report, as far as it could be checked (docs/dying-relu/initialization.md).
PAPER_NOTE = (
    "Lu et al. (arXiv 1903.06733) train width-2 networks of depth 10 on 1-D targets and "
    "report the share of 1,000 runs that collapse: He 91.9% against RAI 29.2% and 93.8% "
    "against 32.6% on their two 1-D functions, 76.8% against 9.6% on a multi-dimensional "
    "one. These numbers come from a third-party summary of the paper: the paper's own "
    "tables and figures could not be read here (only its abstract and front page were "
    "reachable), so they are quoted for comparison, not verified."
)


def _has_initialization_arms(table):
    return any(arm in table[w] for w in table for arm in INITIALIZED_ARMS)


def plot_initialization(table, path):
    """Per width: born dead (solid) and collapsed after training (dotted) against depth."""
    widths = sorted(table)
    figure, axes = plt.subplots(1, len(widths), figsize=(5 * len(widths), 4), squeeze=False)
    for axis, width in zip(axes[0], widths, strict=True):
        for color, (arm, label) in zip(
            "C0 C1 C2".split(), INITIALIZATION_ARMS.items(), strict=True
        ):
            points = table[width].get(arm, {})
            depths = sorted(points)
            axis.plot(
                depths,
                [points[d]["born_dead"] for d in depths],
                "o-",
                color=color,
                label=f"{label}: born dead",
                ms=4,
            )
            trained = [d for d in depths if "collapsed" in points[d]]
            if trained:
                axis.plot(
                    trained,
                    [points[d]["collapsed"] for d in trained],
                    "s:",
                    color=color,
                    label=f"{label}: collapsed",
                    ms=4,
                )
        axis.set(
            title=f"ReLU, width {width}",
            xlabel="depth (hidden layers)",
            ylabel="share of networks",
            ylim=(-0.03, 1.03),
        )
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def initialization_markdown(table):
    """He normal against RAI for ReLU: born dead / collapsed per width and depth."""
    lines = [
        "Columns: ReLU initialized with "
        + "; ".join(f"`{arm}` = {label}" for arm, label in INITIALIZATION_ARMS.items())
        + ". Cells: share born dead (every input of some layer <= 0 on the grid) / "
        "share collapsed to a constant after training, where trained.",
        "",
    ]
    for width in sorted(table):
        arms = [a for a in INITIALIZATION_ARMS if a in table[width]]
        depths = sorted({d for a in arms for d in table[width][a]})
        lines += [
            f"**Width {width}**",
            "",
        ]
        lines += _born_dead_table(table[width], arms, depths) + [""]
    return lines + [PAPER_NOTE, ""]


def _born_dead_table(results, columns, depths):
    """A Markdown table, a row per depth: born dead (/ collapsed, where trained) per column."""
    lines = ["| depth | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for depth in depths:
        cells = []
        for column in columns:
            r = results[column].get(depth)
            if r is None:
                cells.append("")
            elif "collapsed" in r:
                cells.append(f"{_percent(r['born_dead'])} / {_percent(r['collapsed'])}")
            else:
                cells.append(_percent(r["born_dead"]))
        lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    return lines


# Trained to death ------------------------------------------------------------------


def trained_table(results):
    """`{variant: {lr: [results over seeds]}}`."""
    table = defaultdict(lambda: defaultdict(list))
    for result in results:
        table[result["variant"]][result["learning_rate"]].append(result)
    return table


def _final(run, key):
    values = run["history"].get(key)
    return values[-1] if values else None


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _curve(run, key):
    """The epoch-0 value (before training) and one per epoch; NaN after a divergence."""
    values = [run["at_start"].get(key, np.nan), *run["history"].get(key, [])]
    epochs = run["config"]["epochs"] + 1
    return np.array(values + [np.nan] * (epochs - len(values)), dtype=float)


def _nan_mean(curves):
    """Mean over runs (axis 0) of the finite values; NaN where no run has one."""
    finite = np.isfinite(curves)
    counts = finite.sum(axis=0)
    sums = np.where(finite, curves, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def resistance(table):
    """The `resistance.json` content (module docstring)."""
    summary = {}
    for variant in _order(table):
        rates = sorted(table[variant])
        dead = [_mean([_final(r, "dead_fraction") for r in table[variant][lr]]) for lr in rates]
        inactive = [
            _mean([_final(r, "inactive_fraction") for r in table[variant][lr]]) for lr in rates
        ]
        accuracy = [_mean([r["test_accuracy"] for r in table[variant][lr]]) for lr in rates]
        dies_at = next(
            (lr for lr, d in zip(rates, dead, strict=True) if d and d >= DIES_ABOVE), None
        )
        stops_at = next(
            (lr for lr, a in zip(rates, accuracy, strict=True) if a <= STOPPED_BELOW), None
        )
        best = max(accuracy)
        if dies_at is not None:
            i = rates.index(dies_at)
            phrase = (
                f"dies at lr {dies_at:g}: {_percent(dead[i])} dead, acc {_percent(accuracy[i])}"
                f" (best {_percent(best)})"
            )
        elif stops_at is not None:
            i = rates.index(stops_at)
            phrase = (
                f"stops learning at lr {stops_at:g} (acc {_percent(accuracy[i])}) with "
                f"{_percent(dead[i])} dead, {_percent(inactive[i])} inactive"
            )
        elif accuracy[-1] >= KEEPS_TRAINING * best:
            phrase = (
                f"keeps training at every lr up to {rates[-1]:g} "
                f"(acc {_percent(accuracy[-1])}, best {_percent(best)})"
            )
        else:
            phrase = (
                f"no dying up to lr {rates[-1]:g} ({_percent(dead[-1])} dead, "
                f"{_percent(inactive[-1])} inactive), acc there {_percent(accuracy[-1])} "
                f"(best {_percent(best)})"
            )
        summary[variant] = {
            "summary": phrase,
            "learning_rates": rates,
            "dead_fraction": dead,
            "inactive_fraction": inactive,
            "test_accuracy": accuracy,
            "seeds": min(len(table[variant][lr]) for lr in rates),
            "dies_at": dies_at,
            "stops_learning_at": stops_at,
        }
    return summary


def plot_vs_epoch(table, key, ylabel, path):
    rates = sorted({lr for v in table.values() for lr in v})
    figure, axes = plt.subplots(
        1, len(rates), figsize=(4.2 * len(rates), 4), sharey=True, squeeze=False
    )
    for axis, lr in zip(axes[0], rates, strict=True):
        for variant in _order(table):
            runs = table[variant].get(lr, [])
            if not runs:
                continue
            curve = _nan_mean(np.array([_curve(r, key) for r in runs]))
            axis.plot(np.arange(len(curve)), curve, label=variant, **_style(variant))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set(title=f"Adam, lr {lr:g}", xlabel="epoch (0: before training)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{ylabel}, mean over seeds")
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_vs_lr(summary, key, ylabel, path):
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for variant, row in summary.items():
        axis.plot(row["learning_rates"], row[key], label=variant, **_style(variant))
    axis.set(
        xscale="log", xlabel="learning rate (Adam)", ylabel=ylabel, title=f"{ylabel} after training"
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def trained_markdown(table, summary):
    variants = _order(table)
    rates = sorted({lr for v in table.values() for lr in v})
    some_run = next(iter(table[variants[0]].values()))[0]
    config = some_run["config"]
    lines = [
        f"{config['train_images']} training images, {config['test_images']} test images, "
        f"{config['epochs']} epochs, {config['optimizer']} (batch {config['batch_size']}), "
        f"seeds per cell: {min(len(r) for v in table.values() for r in v.values())}. Each cell: "
        "final dead / inactive fraction (all hidden units) and test accuracy, means over seeds.",
        "",
        "| variant | " + " | ".join(f"lr {lr:g}" for lr in rates) + " | summary |",
        "|---" * (len(rates) + 2) + "|",
    ]
    for variant in variants:
        row = summary[variant]
        cells = []
        for lr in rates:
            if lr not in row["learning_rates"]:
                cells.append("")
                continue
            i = row["learning_rates"].index(lr)
            cells.append(
                f"{_percent(row['dead_fraction'][i])} / {_percent(row['inactive_fraction'][i])}"
                f" / {_percent(row['test_accuracy'][i])}"
            )
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {row['summary']} |")
    lines += ["", "Per layer (final dead fraction, mean over seeds) and units that came back:", ""]
    lines += [
        "| variant | lr | dead per layer | inactive per layer | revived / ever inactive "
        "| runs warned |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants:
        for lr in sorted(table[variant]):
            runs = table[variant][lr]
            layers = sorted(
                k.split("/", 1)[1] for k in runs[0]["history"] if k.startswith("dead_fraction/")
            )
            dead = ", ".join(
                _percent(_mean([_final(r, f"dead_fraction/{n}") for r in runs])) for n in layers
            )
            inactive = ", ".join(
                _percent(_mean([_final(r, f"inactive_fraction/{n}") for r in runs])) for n in layers
            )
            revived = sum(r["revived_units"] for r in runs)
            ever = sum(r["ever_inactive_units"] for r in runs)
            warned = sum(bool(r["dead_unit_warnings"]) for r in runs)
            lines.append(
                f"| {variant} | {lr:g} | {dead} | {inactive} | {revived} / {ever} "
                f"| {warned}/{len(runs)} |"
            )
    caught = [
        (lr, r)
        for lr in sorted(table.get("relu", {}))
        for r in table["relu"][lr]
        if r["dead_unit_warnings"]
    ]
    if caught:
        lr, run = caught[-1]
        lines += [
            "",
            f"`DeadUnitMonitor(warn_above={_warn_above()})` caught in the act: ReLU, lr {lr:g}, "
            f"seed {run['seed']}, its `DeadUnitWarning`s:",
            "",
            "```",
            *run["dead_unit_warnings"],
            "```",
        ]
    return lines


def trained_paired_markdown(table):
    """Each variant against ReLU at each learning rate, paired by seed (`paired.py`), and
    the figures the text around the tables quotes, computed here rather than typed."""
    rates = sorted({lr for v in table.values() for lr in v})
    relu = table.get("relu", {})
    lines = [
        "Each variant minus ReLU at the same learning rate, paired by seed (the seed fixes the",
        "initial weights and the batches): test accuracy and final dead / inactive fraction in",
        'points, mean and 95% interval; "better" or "worse" only where the interval excludes',
        '0 (fewer dead or inactive units is better), "no difference shown" otherwise.',
        "",
        "| variant | lr | seeds | test accuracy | dead fraction | inactive fraction |",
        "|---|---|---:|---|---|---|",
    ]
    for variant in _order(table):
        if variant == "relu":
            continue
        for lr in rates:
            runs, reference = table[variant].get(lr, []), relu.get(lr, [])
            if not runs or not reference:
                continue
            cells = [
                verdicts.difference_text(verdicts.compare(runs, reference, key))
                for key in verdicts.METRICS
            ]
            seeds = len({r["seed"] for r in runs} & {r["seed"] for r in reference})
            lines.append(f"| {variant} | {lr:g} | {seeds} | " + " | ".join(cells) + " |")
    return lines + [""] + trained_findings(table)


def trained_findings(table):
    """Sentences of figures: the accuracy range at the lowest rate, the inactive fraction
    of the variants that cannot die at the rates where ReLU dies."""
    rates = sorted({lr for v in table.values() for lr in v})
    lines = []

    def mean(variant, lr, key):
        return _mean([verdicts.value(r, key) for r in table[variant].get(lr, [])])

    low = rates[0]
    accuracy = {v: mean(v, low, "test_accuracy") for v in _order(table) if low in table[v]}
    if accuracy:
        worst, best = min(accuracy, key=accuracy.get), max(accuracy, key=accuracy.get)
        lines.append(
            f"- At lr {low:g} the variants reach {100 * accuracy[worst]:.1f}% ({worst}) to "
            f"{100 * accuracy[best]:.1f}% ({best}) test accuracy (means over seeds)."
        )
    relu = table.get("relu", {})
    dying = [lr for lr in rates if (mean("relu", lr, "dead_fraction") or 0) >= DIES_ABOVE]
    for lr in dying:
        inactive = {
            v: mean(v, lr, "inactive_fraction")
            for v in _order(table)
            if v != "relu" and lr in table[v] and (mean(v, lr, "dead_fraction") or 0) == 0
        }
        inactive = {v: f for v, f in inactive.items() if f is not None}
        if not inactive or lr not in relu:
            continue
        ranked = sorted(inactive, key=inactive.get)
        lines.append(
            f"- At lr {lr:g} ReLU has {_percent(mean('relu', lr, 'dead_fraction'))} dead units; "
            "the variants with no dead unit have inactive fractions (input <= 0 on every probe "
            "example) of " + ", ".join(f"{v} {_percent(inactive[v])}" for v in ranked) + "."
        )
    return lines + [""] if lines else []


def _warn_above():
    from .trained import WARN_ABOVE

    return WARN_ABOVE


# Cures -----------------------------------------------------------------------------

# The arms, in the table's order (`cures.ARMS`; results of arms not listed are reported after).
CURE_ARMS = (
    "relu",
    "revive",
    "revive_zero",
    "revive_keep_state",
    "guard",
    "schedule",
    "clipnorm",
    "lamb",
    "rai",
    "leaky_relu",
    "prelu",
)
CURE_LABELS = {
    "relu": "ReLU (no cure)",
    "revive": "ReLU + ReviveDeadUnits",
    "revive_zero": 'ReLU + ReviveDeadUnits(reset_optimizer="zero")',
    "revive_keep_state": 'ReLU + ReviveDeadUnits(reset_optimizer="keep")',
    "guard": "ReLU + ReduceLROnHighUpdateRatio",
    "schedule": "ReLU + warm-up, cosine decay",
    "clipnorm": "ReLU + clipnorm",
    "lamb": "ReLU, keras.optimizers.Lamb",
    "rai": "ReLU, RAI initialization",
    "leaky_relu": "Leaky ReLU (swapped in)",
    "prelu": "PReLU (swapped in)",
}
REVIVAL_ARMS = ("revive", "revive_zero", "revive_keep_state")
PROTOCOL = ("train_images", "test_images", "epochs", "batch_size", "optimizer")


def _protocol(run):
    """What makes two study runs comparable (provenance and probe entries may differ)."""
    return tuple(run["config"].get(key) for key in PROTOCOL)


def _arm_order(arms):
    return [a for a in CURE_ARMS if a in arms] + sorted(set(arms) - set(CURE_ARMS))


def cures_table(cure_runs, trained_runs):
    """The cures' runs as `({arm: {lr: [runs]}}, reruns)`.

    Plain ReLU (the reference every arm is paired with) is the trained-to-death part's
    runs of the same protocol and seeds; where one is missing, the `relu` run made beside
    the cures stands in. `reruns` are those `relu` runs: the time reference.
    """
    rates = sorted({r["learning_rate"] for r in cure_runs})
    table = defaultdict(lambda: defaultdict(list))
    reruns = []
    for run in cure_runs:
        if run["cure"]["arm"] == "relu":
            reruns.append(run)
        else:
            table[run["cure"]["arm"]][run["learning_rate"]].append(run)
    protocol = _protocol(cure_runs[0]) if cure_runs else None
    for run in trained_runs:
        if (
            run["variant"] == "relu"
            and run["learning_rate"] in rates
            and _protocol(run) == protocol
        ):
            table["relu"][run["learning_rate"]].append(run)
    for run in reruns:
        stored = {r["seed"] for r in table["relu"].get(run["learning_rate"], [])}
        if run["seed"] not in stored:
            table["relu"][run["learning_rate"]].append(run)
    return {arm: dict(table[arm]) for arm in _arm_order(table)}, reruns


def plot_cures(table, path):
    rates = sorted({lr for runs in table.values() for lr in runs})
    arms = list(table)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / len(arms)
    handles = []
    for i, arm in enumerate(arms):
        offsets = np.arange(len(rates)) + (i - (len(arms) - 1) / 2) * width
        for axis, key in zip(
            axes, ("test_accuracy", "dead_fraction", "inactive_fraction"), strict=True
        ):
            per_rate = [
                [r["test_accuracy"] if key == "test_accuracy" else _final(r, key) for r in runs]
                for runs in (table[arm].get(lr, []) for lr in rates)
            ]
            means = [_mean(v) if v else np.nan for v in per_rate]
            bars = axis.bar(offsets, [np.nan if m is None else m for m in means], width)
            if axis is axes[0]:
                handles.append(bars)
            for x, values in zip(offsets, per_rate, strict=True):
                values = [v for v in values if v is not None]
                axis.plot([x] * len(values), values, "k.", ms=3)
    for axis, title in zip(
        axes, ("test accuracy", "final dead fraction", "final inactive fraction"), strict=True
    ):
        axis.set_xticks(np.arange(len(rates)), [f"lr {lr:g}" for lr in rates])
        axis.set(title=title)
        axis.grid(alpha=0.3, axis="y")
    figure.legend(
        handles,
        [CURE_LABELS.get(a, a) for a in arms],
        loc="lower center",
        ncol=len(arms),
        fontsize=8,
    )
    figure.suptitle("Cures, Adam: mean over seeds (bars) and each seed (dots)", fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def missing_cures(table, reruns):
    """Lines naming what a complete comparison would have and these results lack: arms
    (of `CURE_ARMS`) with no run, and (arm, rate) cells short of the seeds seen anywhere."""
    rates = sorted({lr for cells in table.values() for lr in cells})
    seeds = sorted({r["seed"] for cells in table.values() for runs in cells.values() for r in runs})
    lines = []
    expected = sorted(set(verdicts.LOW_RATES + verdicts.HIGH_RATES) - set(rates))
    if expected:
        lines.append(f"- learning rates with no result: {', '.join(f'{lr:g}' for lr in expected)}")
    absent = [arm for arm in CURE_ARMS if arm != "relu" and arm not in table]
    if absent:
        lines.append(f"- arms with no result: {', '.join(absent)}")
    for arm, cells in table.items():
        for lr in rates:
            have = {r["seed"] for r in cells.get(lr, [])}
            if set(seeds) - have:
                lines.append(f"- {arm} at lr {lr:g}: seeds {sorted(set(seeds) - have)} missing")
    timed = {(r["learning_rate"], r["seed"]) for r in reruns}
    untimed = [f"{lr:g}/{seed}" for lr in rates for seed in seeds if (lr, seed) not in timed]
    if untimed and reruns:
        lines.append(f"- plain ReLU not rerun beside the cures (rate/seed): {', '.join(untimed)}")
    elif not reruns:
        lines.append("- plain ReLU not rerun beside the cures: no time ratios")
    return (["Missing from these results (a partial run):", "", *lines, ""]) if lines else []


def cures_rate_markdown(table, reruns, lr):
    """The table of one learning rate: each arm against plain ReLU, paired by seed."""
    reference = table.get("relu", {}).get(lr, [])
    lines = [
        f"**Adam, lr {lr:g}**",
        "",
        "| cure | seeds | test accuracy | vs ReLU (points, 95% interval) | dead fraction "
        "| vs ReLU (points, 95% interval) | time vs ReLU | held-out logit shift (max; mean) |",
        "|---|---:|---:|---|---:|---|---:|---|",
    ]
    for arm, cells in table.items():
        runs = cells.get(lr, [])
        if not runs:
            lines.append(f"| {CURE_LABELS.get(arm, arm)} | 0 | | | | | | |")
            continue
        accuracy = verdicts.compare(runs, reference, "test_accuracy")
        dead = verdicts.compare(runs, reference, "dead_fraction")
        if arm == "relu":
            versus_accuracy = versus_dead = "reference"
            ratio = "1.00x"
        else:
            versus_accuracy = verdicts.difference_text(accuracy)
            versus_dead = verdicts.difference_text(dead)
            ratio = verdicts.time_ratio(runs, reruns).text()
        shift = verdicts.logit_shifts(runs) if arm in REVIVAL_ARMS else None
        shift = "" if shift is None else f"{shift[0]:.3g}; {shift[1]:.3g}"
        lines.append(
            f"| {CURE_LABELS.get(arm, arm)} | {len(runs)} | {verdicts.mean_sd_text(accuracy)} "
            f"| {versus_accuracy} | {verdicts.mean_sd_text(dead)} | {versus_dead} | {ratio} "
            f"| {shift} |"
        )
    return lines + [""]


# The section of the cures tables that docs/dying-relu/cures.md includes (pymdownx.snippets).
CURES_SNIPPET = "cures-tables"


def cures_markdown(table, reruns, norms):
    rates = sorted({lr for cells in table.values() for lr in cells})
    lines = [
        "The MLP and protocol above (Adam), with one cure per row, one table per learning",
        "rate. Cells: mean ± standard deviation over seeds of the test accuracy and of the",
        "final dead fraction (all hidden units, measured before any revival at that epoch's",
        "end); each arm minus plain ReLU paired by seed, in points, with its 95% interval",
        '(`examples/paired.py`): "better" or "worse" only where the interval excludes 0',
        '(fewer dead units is better), "no difference shown" otherwise. Plain ReLU is the',
        "trained-to-death part's runs (the same protocol and seeds). Time vs ReLU: the median",
        "over seeds of the arm's training time over plain ReLU's, rerun beside the cures at",
        "the same rate and seed (runs finished more than 10 minutes apart are marked).",
        "Held-out logit shift: over every revival of the revival arms, the largest and the",
        "mean |change of a logit| it caused on held-out test images.",
        "",
        *missing_cures(table, reruns),
        # The docs' Cures page includes the tables and targets from here (pymdownx.snippets).
        f"<!-- --8<-- [start:{CURES_SNIPPET}] -->",
    ]
    for lr in rates:
        lines += cures_rate_markdown(table, reruns, lr)
    lines += [
        "Issue 29's targets (over 5 seeds, paired against plain ReLU on the same seeds):",
        "",
        *(target.line() for target in verdicts.check_targets(table, reruns)),
        "",
        f"<!-- --8<-- [end:{CURES_SNIPPET}] -->",
    ]
    stored = {
        (r["learning_rate"], r["seed"]): r
        for runs in table.get("relu", {}).values()
        for r in runs
        if "cure" not in r
    }
    pairs = [(r, stored.get((r["learning_rate"], r["seed"]))) for r in reruns]
    pairs = [(new, old) for new, old in pairs if old is not None]
    if pairs:
        same = [p for p in pairs if p[0]["test_accuracy"] == p[1]["test_accuracy"]]
        differ = [p for p in pairs if p[0]["test_accuracy"] != p[1]["test_accuracy"]]
        lines += [
            f"Plain ReLU rerun beside the cures against the trained part's run of the same "
            f"rate and seed (the runs are deterministic): {len(same)} of {len(pairs)} give "
            "the same test accuracy"
            + (
                "; differing: "
                + ", ".join(
                    f"lr {new['learning_rate']:g} seed {new['seed']}: "
                    f"{100 * new['test_accuracy']:.2f}% against {100 * old['test_accuracy']:.2f}%"
                    for new, old in sorted(
                        differ, key=lambda p: (p[0]["learning_rate"], p[0]["seed"])
                    )
                )
                if differ
                else ""
            )
            + ".",
            "",
        ]
    for arm in REVIVAL_ARMS:
        cells = table.get(arm, {})
        counts = [
            f"lr {lr:g}: {np.mean([r['recycled_units'] for r in cells[lr]]):.0f}"
            for lr in sorted(cells)
            if all("recycled_units" in r for r in cells[lr])
        ]
        if counts:
            lines += [
                f"Units re-drawn over training by {CURE_LABELS[arm]}, mean per run: "
                f"{', '.join(counts)}.",
                "",
            ]
    if norms:
        lines += [
            f"`clipnorm={norms['clipnorm']:g}`: the {norms['how']}. Per-variable gradient norms "
            "over plain ReLU's first epoch (median / 90th percentile / max): "
            + ", ".join(
                f"lr {lr}: {v['median']:.2g} / {v['p90']:.2g} / {v['max']:.3g}"
                for lr, v in norms["summary"].items()
            )
            + ".",
            "",
        ]
    return lines


# The report ------------------------------------------------------------------------


def write_report(out_dir, markdown_path=None):
    """Rebuilds the report from `out_dir`'s result files; returns the paths written.

    Args:
        out_dir: The results folder.
        markdown_path: Another file to write the Markdown to (for example
            `examples/DYING_RELU.md`); its image links are made relative to it, and
            any text above a `PREFACE_END` line in it is kept.
    """
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    born = born_dead_tables(_load(out_dir / "born_dead"))
    if born:
        plot_born_dead(born, plots / "born_dead_vs_depth.png")
        written.append(plots / "born_dead_vs_depth.png")
        if plot_collapse(born, plots / "collapse_vs_depth.png"):
            written.append(plots / "collapse_vs_depth.png")
        if _has_initialization_arms(born):
            plot_initialization(born, plots / "initialization_vs_depth.png")
            written.append(plots / "initialization_vs_depth.png")
    table = trained_table(_load(out_dir / "trained"))
    summary = resistance(table) if table else {}
    if table:
        plot_vs_epoch(table, "dead_fraction", "dead fraction", plots / "dead_vs_epoch.png")
        plot_vs_epoch(
            table, "inactive_fraction", "inactive fraction", plots / "inactive_vs_epoch.png"
        )
        plot_vs_lr(summary, "dead_fraction", "dead fraction", plots / "final_dead_vs_lr.png")
        plot_vs_lr(
            summary, "inactive_fraction", "inactive fraction", plots / "final_inactive_vs_lr.png"
        )
        plot_vs_lr(summary, "test_accuracy", "test accuracy", plots / "accuracy_vs_lr.png")
        written += [
            plots / name
            for name in (
                "dead_vs_epoch.png",
                "inactive_vs_epoch.png",
                "final_dead_vs_lr.png",
                "final_inactive_vs_lr.png",
                "accuracy_vs_lr.png",
            )
        ]
        write_json_atomically(out_dir / "resistance.json", summary)
        written.append(out_dir / "resistance.json")
    cure_runs = _load(out_dir / "cures")
    cures, reruns = cures_table(cure_runs, _load(out_dir / "trained")) if cure_runs else ({}, [])
    norms_path = out_dir / "cures" / NORMS_FILE
    norms = read_result(norms_path, redo="measure it again") if norms_path.exists() else None
    if cures:
        plot_cures(cures, plots / "cures.png")
        written.append(plots / "cures.png")
    targets = [out_dir / "report.md"] + ([Path(markdown_path)] if markdown_path else [])
    for target in targets:
        text = _markdown(born, table, summary, plots, target.parent)
        if cures:
            image = Path(os.path.relpath((plots / "cures.png").resolve(), target.parent.resolve()))
            cures_lines = cures_markdown(cures, reruns, norms)
            text += (
                "\n## Cures\n\n" + "\n".join(cures_lines) + f"\n\n![cures]({image.as_posix()})\n"
            )
        write_text_atomically(target, kept_preface(target, PREFACE_END) + text)
        written.append(target)
    return written


def _markdown(born, table, summary, plots, relative_to):
    def image(name, alt):
        path = plots / name
        if not path.exists():
            return []
        target = Path(os.path.relpath(path.resolve(), Path(relative_to).resolve()))
        return [f"![{alt}]({target.as_posix()})", ""]

    lines = ["## Born dead: narrow, deep networks fitted to |x|", ""]
    if born:
        lines += born_dead_markdown(born)
        lines += image("born_dead_vs_depth.png", "share born dead against depth")
        lines += image("collapse_vs_depth.png", "share collapsed after training against depth")
    else:
        lines += ["No results yet (`--part born_dead`).", ""]
    if born and _has_initialization_arms(born):
        lines += ["## Born dead: He normal against the randomized asymmetric initialization", ""]
        lines += initialization_markdown(born)
        lines += image("initialization_vs_depth.png", "ReLU born dead and collapsed: He vs RAI")
    lines += ["## Trained to death: an MLP on CIFAR-10, learning rates up to too high", ""]
    if table:
        lines += trained_markdown(table, summary)
        lines.append("")
        lines += ["### Against ReLU, paired by seed", ""] + trained_paired_markdown(table)
        lines += image("dead_vs_epoch.png", "dead fraction per epoch")
        lines += image("inactive_vs_epoch.png", "inactive fraction per epoch")
        lines += image("final_dead_vs_lr.png", "final dead fraction against learning rate")
        lines += image("final_inactive_vs_lr.png", "final inactive fraction against learning rate")
        lines += image("accuracy_vs_lr.png", "test accuracy against learning rate")
    else:
        lines += ["No results yet (`--part trained`).", ""]
    lines += watching_the_gradients(plots, image)
    return "\n".join(lines).rstrip() + "\n"


def watching_the_gradients(plots, image):
    """The "Watching the gradients" section and its plot, from `gradients/*.json`."""
    from .gradients import report_section

    return report_section(_load(plots.parent / "gradients"), plots, image)
