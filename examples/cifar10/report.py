"""The report, regenerated from every `runs/*.json` of a results folder.

Writes `results.csv`, `results.md` (the table, the comparison with published
results and the plots) and `plots/{val_accuracy,dead_fraction,activations}.png`.
A results folder with a run on fewer images or epochs than `FULL_PROTOCOL` is a
smoke run: its report says so and gives no verdicts against published results.
"""

import csv
import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.

import figures  # noqa: E402
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import paired  # noqa: E402

from . import model as model_lib  # noqa: E402
from .cli import read_result  # noqa: E402
from .train import write_text_atomically  # noqa: E402

# Orderings reported in the literature, best first; the arms inside a tier are level.
PUBLISHED = (
    (
        "Hendrycks & Gimpel 2016 (arXiv 1606.08415), CIFAR-10 error: GELU 7.89%, "
        "ReLU 8.16%, ELU 8.41%",
        (("gelu",), ("relu",), ("elu",)),
    ),
    (
        "Xu et al. 2015 (arXiv 1505.00853), Network in Network: RReLU 88.8%, ahead of ReLU",
        (("rrelu",), ("relu",)),
    ),
    (
        "Mish repository, CIFAR-10 SqueezeNet, 23 runs",
        (
            ("gelu", "swish"),
            ("rrelu", "leaky_relu", "relu6"),
            ("relu",),
            ("elu", "prelu"),
            ("selu",),
        ),
    ),
    (
        "Shang et al. 2016 (arXiv 1603.05201), abstract: CReLU improves CIFAR-10/100 and "
        "ImageNet accuracy over ReLU, with fewer trainable parameters",
        (("crelu", "crelu_half"), ("relu",)),
    ),
)
# The full comparison: every CIFAR-10 image, 10 epochs, two seeds. Verdicts against the
# published orderings need all of it; gaps from less cannot settle them.
FULL_PROTOCOL = {"train_images": 50_000, "test_images": 10_000, "epochs": 10}
_PROTOCOL_NAMES = {
    "train_images": "training images",
    "test_images": "test images",
    "epochs": "epochs",
}
SEEDS_FOR_A_VERDICT = 2
COLUMNS = (
    "arm",
    "params",
    "multiply_adds",
    "seeds",
    "test_accuracy_mean",
    "test_accuracy_sd",
    "test_loss_mean",
    "seconds_per_epoch",
    "dead_fraction",
    "sparsity",
)


# What the report reads from a run file: one without them (cut short, or written by a
# run that trained nothing) is refused with its name, not met as a KeyError later.
RUN_KEYS = (
    *("arm", "seed", "params", "multiply_adds", "test_accuracy", "test_loss"),
    *("config.epochs", "config.train_images", "config.test_images", "train_seconds"),
    *(f"history.{key}" for key in ("val_accuracy", "epoch_seconds", "dead_fraction", "sparsity")),
    *("command", "backend", "keras", "machine", "finished"),
)


def load_run(path):
    """The JSON of one finished (arm, seed), or None if it is not there yet.

    Raises:
        ResultFileError: The file is not valid JSON or lacks one of `RUN_KEYS`.
    """
    path = Path(path)
    return read_result(path, RUN_KEYS) if path.exists() else None


def load_runs(out_dir):
    """The JSON of every finished (arm, seed) in the results folder `out_dir`.

    Raises:
        ResultFileError: A file is not valid JSON or lacks one of `RUN_KEYS`.
    """
    return [read_result(p, RUN_KEYS) for p in sorted((Path(out_dir) / "runs").glob("*.json"))]


def smoke_run_reason(runs):
    """Why `runs` are a smoke run (a phrase naming what falls short), or None if none does.

    A run is a smoke run when its configuration has fewer training or test images, or
    fewer epochs, than `FULL_PROTOCOL`.
    """
    short = {}
    for run in runs:
        for key, full in FULL_PROTOCOL.items():
            if run["config"][key] < full:
                short[key] = min(short.get(key, full), run["config"][key])
    if not short:
        return None
    return ", ".join(
        f"{short[key]:,} of {FULL_PROTOCOL[key]:,} {_PROTOCOL_NAMES[key]}"
        for key in FULL_PROTOCOL
        if key in short
    )


def summarize_runs(runs):
    """One row per arm, in `model.ARMS` order: means over seeds and the seeds' spread."""
    rows = []
    for arm in model_lib.ARMS:
        arm_runs = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        if not arm_runs:
            continue
        accuracy = np.array([r["test_accuracy"] for r in arm_runs])
        epoch_seconds = [s for r in arm_runs for s in r["history"]["epoch_seconds"]]
        rows.append(
            {
                "arm": arm,
                "params": arm_runs[0]["params"],
                "multiply_adds": arm_runs[0]["multiply_adds"],
                "seeds": len(arm_runs),
                "test_accuracy_mean": float(accuracy.mean()),
                # Sample standard deviation; undefined (NaN) for a single seed.
                "test_accuracy_sd": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else np.nan,
                "test_loss_mean": float(np.mean([r["test_loss"] for r in arm_runs])),
                # The median leaves out the first epoch's compilation time.
                "seconds_per_epoch": float(np.median(epoch_seconds)),
                "dead_fraction": float(
                    np.mean([r["history"]["dead_fraction"][-1] for r in arm_runs])
                ),
                "sparsity": float(np.mean([r["history"]["sparsity"][-1] for r in arm_runs])),
                "runs": arm_runs,
            }
        )
    return rows


def compare_with_published(rows):
    """Markdown lines: each published "A above B" against our gap paired by seed, with its
    95% interval (`examples/paired.py`): "agrees" or "disagrees" only where the interval
    excludes 0, "tie" otherwise."""
    by_arm = {row["arm"]: row for row in rows}
    lines = [
        "| published claim | ours: gap paired by seed (points, 95% interval) | per seed "
        "| verdict |",
        "|---|---|---|---|",
    ]
    for source, tiers in PUBLISHED:
        lines.append(f"| **{source}** | | | |")
        for upper, lower in zip(tiers, tiers[1:], strict=False):
            for a in upper:
                for b in lower:
                    lines.append(_verdict_line(a, b, by_arm))
    return lines


def _accuracy_by_seed(row):
    return {run["seed"]: run["test_accuracy"] for run in row["runs"]}


def _verdict_line(a, b, by_arm):
    claim = f"{a} > {b}"
    if a not in by_arm or b not in by_arm:
        return f"| {claim} | | | not run yet |"
    per_seed = ", ".join(f"{g:+.2f}" for g in paired_gaps(by_arm[a], by_arm[b]))
    if not per_seed:
        return f"| {claim} | | no common seed | none: no common seed |"
    difference = paired.paired_difference(
        _accuracy_by_seed(by_arm[a]), _accuracy_by_seed(by_arm[b])
    )
    if difference.seeds < SEEDS_FOR_A_VERDICT:  # No interval to judge the gap by.
        return f"| {claim} | {100 * difference.mean:+.2f} | {per_seed} | none: needs two seeds |"
    verdict = difference.verdict(better="agrees", worse="disagrees", same="tie")
    return f"| {claim} | {difference.text(digits=2, unit='')} | {per_seed} | {verdict} |"


def against_relu(runs):
    """Markdown lines: each arm against ReLU paired by seed, "better", "worse" or "tie"
    (the figures README and the docs quote: `examples/figures.py`'s `cifar_figures`)."""
    seeds = {run["seed"] for run in runs if run["arm"] == "relu"}
    runs = [run for run in runs if run["seed"] in seeds]
    if not seeds or {run["arm"] for run in runs} == {"relu"}:
        return []
    values = figures.cifar_figures(runs)
    mean = {
        arm: np.mean([run["test_accuracy"] for run in runs if run["arm"] == arm])
        for arm in {run["arm"] for run in runs} - {"relu"}
    }
    return [
        f"{values['cifar.verdicts'][0].upper()}{values['cifar.verdicts'][1:]}.",
        "",
        "| arm | test accuracy (mean ± sd) | minus ReLU, paired by seed (points) |",
        "|---|---:|---|",
        f"| relu | {values['cifar.acc.relu']} | |",
        *(
            f"| {arm} | {values[f'cifar.acc.{arm}']} | {values[f'cifar.vs_relu.{arm}']} |"
            for arm in sorted(mean, key=mean.get, reverse=True)
        ),
    ]


def paired_gaps(row_a, row_b):
    """Accuracy of arm a minus arm b in points, seed by seed, for the seeds both ran.

    One seed gives every arm the same batches and augmentation (and, where the
    shapes match, the same initial weights), so these gaps are paired: the same
    sign at every seed says more than the gap between means alone.
    """
    accuracy_b = {run["seed"]: run["test_accuracy"] for run in row_b["runs"]}
    return [
        100 * (run["test_accuracy"] - accuracy_b[run["seed"]])
        for run in row_a["runs"]
        if run["seed"] in accuracy_b
    ]


def plot_curves(rows, key, ylabel, path):
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, row in enumerate(rows):
        curves = np.array([r["history"][key] for r in row["runs"]])
        epochs = np.arange(1, curves.shape[1] + 1)
        style = "-" if index < 10 else "--"  # The default cycle has 10 colours; 11 arms.
        label = f"{row['arm']} ({row['seeds']})"
        axes.plot(epochs, curves.mean(axis=0), style, marker="o", label=label)
    axes.set(xlabel="epoch", ylabel=ylabel, title=f"{ylabel}, mean over seeds (count)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_activations(path, step=1e-3):
    """Each variant's function and its derivative, from the layers the arms use.

    Derivatives are central finite differences, (f(x + h) - f(x - h)) / 2h with
    h = `step`, so at a kink they show the mean of the two one-sided slopes.
    """
    x = np.linspace(-5.0, 7.0, 1201, dtype="float32")[:, None]
    arms = [arm for arm in model_lib.ARMS.values() if arm.width_factor == 1.0]
    figure, axes = plt.subplots(2, 5, figsize=(16, 6.5), sharex=True)
    for arm, axis in zip(arms, axes.ravel(), strict=True):
        layer = arm.activation(seed=0)

        def f(values, layer=layer):
            return keras.ops.convert_to_numpy(layer(values, training=False))

        y = f(x)
        slope = (f(x + step) - f(x - step)) / (2 * step)
        halves = ("", "") if y.shape[-1] == 1 else (" relu(x)", " relu(-x)")
        for half in range(y.shape[-1]):
            axis.plot(x[:, 0], y[:, half], label=f"f{halves[half]}")
            axis.plot(x[:, 0], slope[:, half], "--", label=f"f' (central diff.){halves[half]}")
        axis.set_title(f"{arm.name} {arm.kwargs or ''}".strip(), fontsize=10)
        axis.axhline(0, color="grey", lw=0.5)
        axis.axvline(0, color="grey", lw=0.5)
        axis.set_ylim(-2, 7)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(
        f"Activation functions (solid) and derivatives (dashed: central difference, h = {step})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# In a Markdown file the report is written to, what stands above this line is kept.
PREFACE_END = "<!-- Generated below by `cifar10_compare.py --report-only`; edit above. -->"


def write_report(out_dir, markdown_path=None):
    """Regenerates the CSV, Markdown and plots from `out_dir/runs/*.json`.

    Args:
        out_dir: The results folder.
        markdown_path: Another file to write the Markdown to (for example
            `examples/RESULTS.md`); its image links are made relative to it, and
            any text above a `PREFACE_END` line in it is kept.

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    runs = load_runs(out_dir)
    rows = summarize_runs(runs)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = [plots / "activations.png"]
    plot_activations(written[0])
    if rows:
        plot_curves(rows, "val_accuracy", "test accuracy", plots / "val_accuracy.png")
        plot_curves(rows, "dead_fraction", "dead-unit fraction", plots / "dead_fraction.png")
        written += [plots / "val_accuracy.png", plots / "dead_fraction.png"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(out_dir / "results.csv", table.getvalue())
    written.append(out_dir / "results.csv")
    targets = [out_dir / "results.md"] + ([Path(markdown_path)] if markdown_path else [])
    for target in targets:
        text = _markdown(rows, runs, out_dir, target.parent)
        write_text_atomically(target, kept_preface(target) + text)
        written.append(target)
    return written


def _probe_note(runs, out_dir):
    """On what the dead-unit figures were measured: runs made before the probe was
    stratified (no `probe` recorded) took the first 512 training images, one class."""
    if all("probe" in run for run in runs):
        return "on " + " and ".join(sorted({run["probe"] for run in runs}))
    note = (
        "measured on one class (airplanes): the first 512 training images, where the data "
        "set is stored class by class (a subset of it keeps the order: its first 512 are "
        "nearly all airplanes)"
    )
    path = Path(out_dir) / "stratified_probe.json"
    if not path.exists():
        return note
    measured = json.loads(path.read_text())
    models = sorted(measured["models"].values(), key=lambda m: (m["arm"], m["seed"]))
    figures = "; ".join(
        f"{m['arm']} seed {m['seed']} {m['stratified']['dead_fraction']:.3f} and "
        f"{m['stratified']['sparsity']:.3f} ({m['airplanes']['sparsity']:.3f} on airplanes)"
        for m in models
    )
    return (
        f"{note}. The saved final weights of {len(models)} runs, measured again on a probe "
        f"{measured['probe'].replace('stratified', 'stratified by class')} "
        f"(`{path.name}`, `cifar10/remeasure.py`), give dead fraction and sparsity: {figures}"
    )


def _machines_note(runs):
    """A warning when s/epoch mixes machines: their speeds differ more than the arms' do."""
    machines = {run["machine"] for run in runs}
    if len(machines) < 2:
        return ""
    return (
        f" The runs were made on {len(machines)} different machines (see Runs below), so "
        "s/epoch compares the machines as much as the arms; the training-step benchmark "
        "(`benchmarks/bench_step.py`) compares the arms on one machine."
    )


def _verdicts(rows, runs):
    return [
        "Rankings and gaps, not absolute accuracies (other networks, longer training). Each "
        "gap is paired by seed (a seed gives both arms the same batches and, where shapes "
        "match, the same initial weights), with the 95% t interval over the per-seed gaps "
        "(`examples/paired.py`): a claim agrees or disagrees only where the interval excludes "
        "0, and is a tie otherwise.",
        "",
        *against_relu(runs),
        "",
        *compare_with_published(rows),
    ]


def _smoke_instead_of_verdicts(reason):
    protocol = ", ".join(
        f"{value:,} {_PROTOCOL_NAMES[key]}" for key, value in FULL_PROTOCOL.items()
    )
    return [
        f"None for a smoke run ({reason}): verdicts need the full protocol ({protocol}) "
        f"and {SEEDS_FOR_A_VERDICT} seeds."
    ]


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "numpy": "NumPy"}


def versions(run):
    """`Keras 3.15.1, TensorFlow 2.21.0`: what a run was made with. Runs written before
    the backend's version was recorded give its name only."""
    backend = BACKEND_NAMES.get(run["backend"], run["backend"])
    if run.get("backend_version"):
        backend += f" {run['backend_version']}"
    return f"Keras {run['keras']}, {backend}"


def kept_preface(path, marker=PREFACE_END):
    """The hand-written text above `marker` in `path`, kept when a report is rewritten."""
    if not path.exists():
        return ""
    text = path.read_text()
    end = text.find(marker)
    return "" if end < 0 else text[: end + len(marker)] + "\n\n"


def _markdown(rows, runs, out_dir, relative_to):
    def link(name):
        return Path(os.path.relpath(out_dir / "plots" / name, relative_to)).as_posix()

    smoke = smoke_run_reason(runs)
    one_class = " (airplanes)" if any("probe" not in run for run in runs) else ""
    lines = ["# CIFAR-10: the ReLU family compared" + (" (smoke run)" if smoke else ""), ""]
    if not rows:
        return "\n".join([*lines, "No finished runs yet.", "", f"![]({link('activations.png')})"])
    if smoke:
        lines += [
            f"**A smoke run**: {smoke}. It shows that every part works and how the arms "
            "start to learn; on less than the full protocol it gives no verdicts against "
            "published results. The full comparison: `examples/RESULTS.md`.",
            "",
        ]
    config = runs[0]["config"]
    if smoke:  # A smoke run trains the arms it names; the others are not "to do".
        count = f"{len(runs)} finished runs (arm, seed)."
    else:
        expected = {(arm, seed) for arm in model_lib.ARMS for seed in {r["seed"] for r in runs}}
        missing = sorted(expected - {(r["arm"], r["seed"]) for r in runs})
        count = f"{len(runs)} finished runs (arm, seed) of {len(expected)} for the seeds present"
        count += f"; not yet run: {', '.join(f'{a}/{s}' for a, s in missing)}." if missing else "."
    lines += [
        count,
        f"Protocol: {config}.",
        "",
        "| arm | params | multiply-adds | seeds | test accuracy (mean ± sd) | test loss "
        f"| s/epoch | dead fraction{one_class} | sparsity{one_class} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: -r["test_accuracy_mean"]):
        sd = "" if np.isnan(row["test_accuracy_sd"]) else f" ± {100 * row['test_accuracy_sd']:.2f}"
        lines.append(
            f"| {row['arm']} | {row['params']:,} | {row['multiply_adds'] / 1e6:.1f}M "
            f"| {row['seeds']} | {100 * row['test_accuracy_mean']:.2f}%{sd} "
            f"| {row['test_loss_mean']:.3f} | {row['seconds_per_epoch']:.1f} "
            f"| {row['dead_fraction']:.3f} | {row['sparsity']:.3f} |"
        )
    lines += [
        "",
        "Parameters are the trainable ones; multiply-adds count convolutions and the dense "
        "layer for one image. s/epoch is the median over epochs (training plus evaluation on "
        "the test set). Dead fraction and sparsity (`keras_relu.diagnostics`) are at the last "
        f"epoch, over all activation layers, {_probe_note(runs, out_dir)}." + _machines_note(runs),
        "",
        "## Against published comparisons",
        "",
        *(_smoke_instead_of_verdicts(smoke) if smoke else _verdicts(rows, runs)),
        "",
        "## Plots",
        "",
        f"![test accuracy per epoch]({link('val_accuracy.png')})",
        "",
        f"![dead-unit fraction per epoch]({link('dead_fraction.png')})",
        "",
        f"![activation functions and derivatives]({link('activations.png')})",
        "",
        "## Runs",
        "",
        "| arm | seed | test accuracy | wall time (s) | versions | machine | finished |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (r["arm"], r["seed"])):
        lines.append(
            f"| {run['arm']} | {run['seed']} | {100 * run['test_accuracy']:.2f}% "
            f"| {run['train_seconds']:.0f} | {versions(run)} "
            f"| {run['machine']} | {run['finished']} |"
        )
    commands = sorted({run["command"] for run in runs})
    lines += ["", "Commands:", "", "```", *commands, "```", ""]
    return "\n".join(lines)
