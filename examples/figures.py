"""The figures README.md and the documentation quote, computed from the committed results.

    python examples/figures.py            # list every figure and its text
    python examples/figures.py --write    # into README.md, docs/**/*.md, examples/DYING_RELU.md
    python examples/figures.py --check    # exit 1 where a page's text is stale

A figure stands in the Markdown between markers, and only there:

    GELU reached <!-- fig:cifar.acc.gelu -->83.98 ± 0.37%<!-- /fig --> ...

GitHub shows the text between the markers (the comments are hidden); `--write` replaces it
with what the results give today, `tests/test_docs_figures.py` fails when a page's text
differs from it, and the documentation build (`docs/_hooks/keras_relu_docs.py`) renders the
same figures, so the site cannot show a stale one. After a rerun of the CIFAR-10 comparison,
the dying-ReLU study or a benchmark, `python examples/figures.py --write` updates every page.

Every comparison goes through `paired.paired_difference` (a 95% t interval over per-seed
differences): the text says "better" or "worse" only when the interval excludes 0, "tie"
(CIFAR-10) or "no difference shown" (the study) otherwise, so the prose around a figure
never asserts a direction the data do not keep.

Pure Python (json, no NumPy, no Keras): the documentation build imports it.
"""

import argparse
import functools
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paired  # noqa: E402
from dying import verdicts  # noqa: E402  (pure Python, as this module)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "examples" / "results"
CIFAR_RUNS = RESULTS / "full" / "runs"
STUDY = RESULTS / "dying_relu"
STEP_BENCHMARK = ROOT / "benchmarks" / "results_step.json"
# Layer benchmarks (`benchmarks/bench_layers.py --json`): {figure prefix: file}.
LAYER_BENCHMARKS = {
    "layers": ROOT / "benchmarks" / "results_layers.json",
    "prelu_eager_tf": ROOT / "benchmarks" / "results_prelu_eager_tf.json",
    # Forward+backward called with training=True, as fit calls a layer (issue 30).
    "layers_training": ROOT / "benchmarks" / "results_layers_training.json",
}

MARKER = re.compile(r"<!-- fig:([\w.\-]+) -->(.*?)<!-- /fig -->", re.S)

NAMES = {
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "prelu": "PReLU",
    "rrelu": "RReLU",
    "elu": "ELU",
    "selu": "SELU",
    "relu6": "ReLU6",
    "crelu": "CReLU",
    "crelu_half": "CReLU with half the filters",
    "gelu": "GELU",
    "swish": "Swish",
    "no_activation": "no activation",
}
CURE_NAMES = {
    "schedule": "a warm-up and cosine decay of the rate",
    "clipnorm": "gradient clipping",
    "leaky_relu": "Leaky ReLU",
    "prelu": "PReLU",
    "rai": "RAI",
    "revive": "`ReviveDeadUnits`",
    "revive_zero": '`ReviveDeadUnits(reset_optimizer="zero")`',
    "revive_keep_state": '`ReviveDeadUnits(reset_optimizer="keep")`',
    "guard": "`ReduceLROnHighUpdateRatio`",
    "lamb": "the Lamb optimizer",
}


def _load(folder, *keys):
    """The JSON files of `folder` that hold every one of `keys` (results, not summaries)."""
    loaded = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*.json"))]
    return [r for r in loaded if isinstance(r, dict) and all(key in r for key in keys)]


# What makes two study runs the same protocol (other config entries, such as provenance,
# may differ between parts).
PROTOCOL = ("train_images", "test_images", "epochs", "batch_size", "optimizer")


def _protocol(run):
    return tuple(run["config"].get(key) for key in PROTOCOL)


def _percent(value, digits=0):
    return f"{100 * value:.{digits}f}%"


def _mean_sd(values, digits=2, unit="%"):
    """`mean ± sd` in percent (just the mean for one value)."""
    mean, sd = paired.mean_and_sd(values)
    text = f"{100 * mean:.{digits}f}"
    return (text if sd is None else f"{text} ± {100 * sd:.{digits}f}") + unit


def _series(names):
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _rate(lr):
    return f"{lr:.0e}".replace("e-0", "e-")


# The CIFAR-10 comparison.


def cifar_figures(runs):
    """`{name: text}` from the full comparison's runs (`examples/results/full/runs`)."""
    by_arm = defaultdict(dict)
    for run in runs:
        by_arm[run["arm"]][run["seed"]] = run["test_accuracy"]
    seeds = min(len(s) for s in by_arm.values())
    figures = {"cifar.seeds": str(seeds)}
    for arm, accuracy in by_arm.items():
        figures[f"cifar.acc.{arm}"] = _mean_sd(accuracy.values())
    relu = by_arm["relu"]
    groups = defaultdict(list)
    order = sorted((a for a in by_arm if a != "relu"), key=lambda a: -_avg(by_arm[a]))
    for arm in order:
        difference = paired.paired_difference(by_arm[arm], relu)
        figures[f"cifar.vs_relu.{arm}"] = f"{difference.text(digits=2)}: {_tie(difference)}"
        groups[_tie(difference)].append(f"{NAMES[arm]} ({figures[f'cifar.acc.{arm}']})")
    parts = []
    for verdict, verb in (("better", "are better"), ("tie", "tie"), ("worse", "are worse")):
        if groups[verdict]:
            verb = (
                verb
                if len(groups[verdict]) > 1
                else {"are better": "is better"}.get(verb, "ties" if verb == "tie" else "is worse")
            )
            parts.append(f"{_series(groups[verdict])} {verb}")
    figures["cifar.verdicts"] = (
        f"paired by seed with 95% intervals over {seeds} seeds against ReLU "
        f"({figures['cifar.acc.relu']}): " + "; ".join(parts)
    )
    return figures


def _avg(values_by_seed):
    return sum(values_by_seed.values()) / len(values_by_seed)


def _tie(difference):
    return difference.verdict(better="better", worse="worse", same="tie")


# `benchmarks/bench_step.py`'s runs, as the Performance page names them, and issue 30's
# targets for the training step: against ReLU (where the compiler fuses elementwise work,
# 5%; where each op is a kernel, 10%), against Keras's counterpart (at least 0.95x its
# speed: at most 1/0.95 its time) and RReLU against Leaky ReLU.
STEP_RUNS = {
    "tensorflow/graph": "TensorFlow, `fit`'s default (`tf.function`)",
    "tensorflow/xla": "TensorFlow, `jit_compile=True` (XLA)",
    "jax/jit": "JAX (jit)",
    "torch/eager": "PyTorch, eager",
    "torch/compile": "PyTorch, `torch.compile`",
}
STEP_RUN_SHORT = {
    "tensorflow/graph": "TensorFlow's default",
    "tensorflow/xla": "TensorFlow with XLA",
    "jax/jit": "JAX",
    "torch/eager": "PyTorch eager",
    "torch/compile": "`torch.compile`",
}
STEP_RELU_TARGET = {
    "tensorflow/graph": 1.10,
    "tensorflow/xla": 1.05,
    "jax/jit": 1.05,
    "torch/eager": 1.10,
    "torch/compile": 1.10,
}
STEP_RELU_TARGET_VARIANTS = ("prelu", "leaky_relu", "elu", "selu", "relu6", "gelu", "swish")
STEP_COUNTERPART_TARGET = 1 / 0.95
STEP_RRELU_TARGET = 1.15
STEP_ARMS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "relu6", "gelu", "swish")
STEP_ARMS += ("crelu", "crelu_half", "no_activation")


def step_figures(benchmark):
    """`benchmarks/results_step.json`: per-backend tables of each arm's step against ReLU's
    (and against Keras's counterpart), the issue's targets, PReLU's export, and README's
    `step.<arm>` (TensorFlow's default, the CNN's training step)."""
    runs = {run: models for run, models in benchmark["runs"].items() if "error" not in models}
    figures = {
        f"step.{arm}": f"{row['x_relu']:.2f}x"
        for arm, row in runs["tensorflow/graph"]["cnn"]["train"].items()
    }
    for run, models in runs.items():  # e.g. step.jax_jit.rrelu.x_counterpart
        for arm, row in models["cnn"]["train"].items():
            key = f"step.{run.replace('/', '_')}.{arm}"
            figures[f"{key}.x_relu"] = f"{row['x_relu']:.2f}x"
            if "x_counterpart" in row:
                figures[f"{key}.x_counterpart"] = f"{row['x_counterpart']:.2f}x"
    for model in ("cnn", "mlp"):
        for phase in ("train", "predict"):
            figures[f"step.table.{model}.{phase}"] = _step_table(runs, model, phase)
    train = {run: models["cnn"]["train"] for run, models in runs.items()}
    figures["step.target.relu"] = _step_target(
        train, STEP_RELU_TARGET_VARIANTS, "x_relu", STEP_RELU_TARGET
    )
    figures["step.target.counterpart"] = _step_target(
        train,
        [arm for arm in STEP_RELU_TARGET_VARIANTS + ("relu",) if arm != "rrelu"],
        "x_counterpart",
        dict.fromkeys(STEP_RUNS, STEP_COUNTERPART_TARGET),
    )
    figures["step.target.rrelu"] = _step_target(
        train, ["rrelu"], "x_counterpart", dict.fromkeys(STEP_RUNS, STEP_RRELU_TARGET)
    )
    export = runs["tensorflow/graph"]["export"]
    for name, row in export["forward"].items():
        for key, value in row.items():
            if key.startswith("x_"):
                figures[f"step.export.{name}.{key}"] = f"{value:.2f}x"
    kernels = export["tflite_kernels"]
    figures["step.export.prelu_kernels"] = (
        f"{kernels['prelu'].get('PRELU', 0)} `PRELU` kernels for the CNN's "
        f"{kernels['keras_prelu'].get('PRELU', 0)} PReLU layers"
    )
    figures["step.run"] = _step_run(benchmark)
    return figures


def _step_cell(row):
    text = f"{row['x_relu']:.2f}x"
    if "counterpart" in row:
        text += f" ({row['x_counterpart']:.2f}x)"
    return text


def _step_table(runs, model, phase):
    columns = [run for run in STEP_RUNS if model in runs.get(run, {})]
    lines = [
        "| arm | " + " | ".join(STEP_RUNS[run] for run in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    relu = [f"{runs[run][model][phase]['relu']['median_ms']:.1f} ms" for run in columns]
    lines.append("| ReLU's step | " + " | ".join(relu) + " |")
    for arm in STEP_ARMS:
        cells = [runs[run][model][phase].get(arm) for run in columns]
        if any(cells):
            texts = [_step_cell(cell) if cell else "" for cell in cells]
            lines.append(f"| {NAMES[arm]} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def _step_verdict(row, key, target):
    """ "met" (median at most the target), "within noise" (only the first quartile of the
    per-repeat ratios is) or "missed"."""
    if row[key] <= target:
        return "met"
    return "within noise" if row[f"{key}_iqr"][0] <= target else "missed"


def _step_target(train, arms, key, targets):
    """The arms and runs that miss a target (or meet it only within noise), with figures."""
    missed, noisy = [], []
    for run, target in targets.items():
        for arm in arms:
            row = train.get(run, {}).get(arm)
            if row is None or key not in row:
                continue
            verdict = _step_verdict(row, key, target)
            low, high = row[f"{key}_iqr"]
            figure = f"{row[key]:.2f}x, IQR {low:.2f}-{high:.2f}"
            text = f"{NAMES[arm]} on {STEP_RUN_SHORT[run]} ({figure})"
            if verdict == "missed":
                missed.append(text)
            elif verdict == "within noise":
                noisy.append(text)
    if missed and noisy:
        return f"**missed** by {_series(missed)}; met only within noise by {_series(noisy)}"
    if missed:
        return f"**missed** by {_series(missed)}"
    if noisy:
        return f"met, only within noise by {_series(noisy)}"
    return "met on every backend"


def _step_run(benchmark):
    """Which runs the tables come from: command, date, machine, load of each."""
    texts = []
    for part in benchmark.get("parts", [benchmark]):
        provenance = part["provenance"]
        libraries = provenance["libraries"]
        texts.append(
            f"`{' '.join(provenance['command'])}`, finished {part['finished']}, "
            f"{provenance['config']['repeats']} round-robin repeats, {part['load']}"
        )
    return (
        "; ".join(texts) + f" ({provenance['machine']}, Keras {libraries['keras']}, "
        f"TensorFlow {libraries['tensorflow']}, JAX {libraries['jax']}, "
        f"torch {libraries['torch']})"
    )


def layer_figures(prefix, rows):
    """`bench_layers.py` rows: each implementation's time against the group's reference
    (`.x_ref`: ms / the ReLU reference's ms) and the reference's against ours (`.x_ours`, the
    file's `ours_speedup`: its ms / our layer's ms), as
    `{prefix}.{backend}.{size}.{mode}.{layer}.{implementation}.x_ref`."""
    groups = defaultdict(list)
    for row in rows:
        groups[row["backend"], row["size"], row["mode"], row["layer"]].append(row)
    figures = {}
    for key, group in groups.items():
        reference = [row["ms"] for row in group if row["kind"] == "ref"]
        for row in group:
            name = f"{prefix}.{'.'.join(key)}.{_slug(row['impl'])}"
            figures[f"{name}.x_ours"] = f"{row['ours_speedup']:.2f}x"
            if reference:
                figures[f"{name}.x_ref"] = f"{row['ms'] / reference[0]:.2f}x"
    return figures


def _slug(implementation):
    """ "keras.layers.PReLU(shared_axes=[1, 2])" -> "keras_layers_prelu"."""
    return re.sub(r"[^a-z0-9]+", "_", implementation.split("(")[0].lower()).strip("_")


# The dying-ReLU study.


def _final(run, key):
    values = run["history"].get(key) or [None]
    return values[-1]


def trained_figures(runs):
    """The trained-to-death part (`examples/results/dying_relu/trained`)."""
    cells = defaultdict(dict)  # (variant, lr) -> {seed: run}
    for run in runs:
        cells[run["variant"], run["learning_rate"]][run["seed"]] = run
    rates = sorted({lr for _, lr in cells})
    seeds = min(len(s) for s in cells.values())
    figures = {"trained.seeds": str(seeds)}

    def mean(variant, lr, key):
        values = [_value(run, key) for run in cells[variant, lr].values()]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    for variant, lr in cells:
        for key in ("test_accuracy", "dead_fraction", "inactive_fraction"):
            value = mean(variant, lr, key)
            if value is not None:
                figures[f"trained.{key}.{variant}.{_rate(lr)}"] = _percent(value)
    for lr in rates:
        accuracy = {v: mean(v, lr2, "test_accuracy") for (v, lr2) in cells if lr2 == lr}
        low, high = min(accuracy, key=accuracy.get), max(accuracy, key=accuracy.get)
        figures[f"trained.accuracy_range.{_rate(lr)}"] = (
            f"{_percent(accuracy[low], 1)} ({NAMES[low]}) to "
            f"{_percent(accuracy[high], 1)} ({NAMES[high]})"
        )
        if ("relu", lr) not in cells:
            continue
        relu = {seed: run["test_accuracy"] for seed, run in cells["relu", lr].items()}
        figures[f"trained.relu_by_seed.{_rate(lr)}"] = _series(
            _percent(relu[seed]) for seed in sorted(relu, key=relu.get)
        )
        for variant in {v for v, lr2 in cells if lr2 == lr} - {"relu"}:
            # The report's comparison (dying/verdicts.py), not a second one.
            comparison = verdicts.compare(
                list(cells[variant, lr].values()), list(cells["relu", lr].values()), "test_accuracy"
            )
            figures[f"trained.vs_relu.{variant}.{_rate(lr)}"] = (
                f"{comparison.difference.text(digits=1)}: {comparison.verdict}"
            )
    warned, never = [], []
    for variant in NAMES:
        counts = [
            (lr, sum(bool(run["dead_unit_warnings"]) for run in cells[variant, lr].values()))
            for lr in rates
            if (variant, lr) in cells
        ]
        if not counts:
            continue
        flagged = [f"{_rate(lr)} ({n}/{len(cells[variant, lr])})" for lr, n in counts if n]
        if flagged:
            warned.append(f"{NAMES[variant]} at {_series(flagged)}")
        else:
            never.append(NAMES[variant])
    figures["trained.warned"] = (
        f"warned (runs with a warning / runs) for {'; '.join(warned)}; never for {_series(never)}"
    )
    return figures


def _value(run, key):
    return run["test_accuracy"] if key == "test_accuracy" else _final(run, key)


def born_dead_figures(results):
    """The born-dead part (`examples/results/dying_relu/born_dead`)."""
    cell = {(r["variant"], r["width"], r["depth"]): r for r in results}
    figures = {}
    for (variant, width, depth), result in cell.items():
        key = f"{variant}.w{width}.d{depth}"
        figures[f"born.born_dead.{key}"] = _percent(result["born_dead"])
        figures[f"born.runs.{key}"] = f"{result['config']['runs']:,}"
        if result["config"]["trained"]:
            figures[f"born.collapsed.{key}"] = _percent(result["collapsed"])
    collapsed = defaultdict(list)  # The range over the trained depths, per variant and width.
    for (variant, width, _), result in cell.items():
        if result["config"]["trained"]:
            collapsed[variant, width].append(result["collapsed"])
    for (variant, width), values in collapsed.items():
        figures[f"born.collapsed_range.{variant}.w{width}"] = (
            f"{_percent(min(values))}-{_percent(max(values))}"
        )
    runs = sorted({r["config"]["runs"] for r in results if r["config"]["trained"]})
    untrained = sorted({r["config"]["runs"] for r in results if not r["config"]["trained"]})
    figures["born.runs"] = (
        f"{_series(f'{n:,}' for n in runs)} networks per trained point, "
        f"{_series(f'{n:,}' for n in untrained)} per point measured only at initialization"
    )
    smooth = ["elu", "selu", "gelu", "swish"]
    worst = max((r for r in results if r["variant"] in smooth), key=lambda r: r["born_dead"])
    figures["born.smooth_max"] = (
        f"{_percent(worst['born_dead'])} ({NAMES[worst['variant']]}, width {worst['width']}, "
        f"depth {worst['depth']})"
    )
    return figures


def gradient_figures(runs):
    """When the warnings came, in the gradients part's ReLU runs without a remedy."""
    figures = {}
    for lr in sorted({r["learning_rate"] for r in runs}):
        plain = [
            r
            for r in runs
            if r["variant"] == "relu" and r["learning_rate"] == lr and r.get("remedy") is None
        ]
        warned = [r["gradient_warnings"][0]["step"] for r in plain if r["gradient_warnings"]]
        # DeadUnitMonitor measures at the end of each epoch: "Epoch 1: dead units above ...".
        epochs = [
            int(re.match(r"Epoch (\d+)", r["dead_unit_warnings"][0]).group(1))
            * r["steps_per_epoch"]
            for r in plain
            if r["dead_unit_warnings"]
        ]
        dying = [_first_dying_step(r) for r in plain]
        dying = [step for step in dying if step is not None]
        if not (plain and warned and dying and epochs):
            continue
        figures[f"gradients.relu.{_rate(lr)}"] = (
            f"`GradientMonitor` warned at step {_span(warned)} of ReLU's {len(plain)} runs at "
            f"{_rate(lr)}, `DeadUnitMonitor` (which measures once an epoch) at step "
            f"{_span(epochs)}, and the study's own check every {plain[0]['config']['every']} "
            f"steps first found a layer more than 20% dead at step {_span(dying)}"
        )
    return figures


def _first_dying_step(run):
    for row in run["every_few_batches"]:
        layers = [v for k, v in row.items() if k.startswith("dead_fraction/")]
        if layers and max(layers) > 0.2:
            return row["step"]
    return None


def _span(values):
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def cures_figures(cure_runs, trained_runs):
    """The cures part: each cure against plain ReLU (from trained/, the same protocol and
    seeds), pooled over the rates where ReLU dies (`cures.vs_relu.<arm>`, paired by (rate,
    seed)) and at each rate alone (`cures.vs_relu.<arm>.<rate>`, paired by seed)."""
    all_rates = sorted({r["learning_rate"] for r in cure_runs})
    rates = [lr for lr in all_rates if lr > 3e-3]
    relu = {
        (r["learning_rate"], r["seed"]): r["test_accuracy"]
        for r in trained_runs
        if r["variant"] == "relu" and _protocol(r) == _protocol(cure_runs[0])
    }
    arms = defaultdict(dict)
    for run in cure_runs:
        if run["cure"]["arm"] != "relu":
            arms[run["cure"]["arm"]][run["learning_rate"], run["seed"]] = run["test_accuracy"]
    figures = {"cures.rates": _series(_rate(lr) for lr in rates)}
    for arm, accuracy in arms.items():
        high = {key: a for key, a in accuracy.items() if key[0] in rates}
        difference = paired.paired_difference(high, relu)
        figures[f"cures.vs_relu.{arm}"] = (
            f"{_percent(_avg(high))} test accuracy against ReLU's "
            f"{_percent(_avg({k: relu[k] for k in high if k in relu}))}, "
            f"{difference.text(digits=0).replace('seeds', 'paired runs')}: {difference.verdict()}"
        )
    best = max(arms, key=lambda arm: _avg({k: a for k, a in arms[arm].items() if k[0] in rates}))
    figures["cures.best"] = f"{CURE_NAMES[best]}: {figures[f'cures.vs_relu.{best}']}"
    for arm, accuracy in arms.items():  # Each rate alone, paired by seed.
        for lr in all_rates:
            at = {seed: a for (rate, seed), a in accuracy.items() if rate == lr}
            base = {seed: a for (rate, seed), a in relu.items() if rate == lr}
            if at and set(at) & set(base):
                difference = paired.paired_difference(at, base)
                figures[f"cures.vs_relu.{arm}.{_rate(lr)}"] = (
                    f"{_percent(_avg(at))} test accuracy against ReLU's "
                    f"{_percent(_avg({s: base[s] for s in at if s in base}))}, "
                    f"{difference.text(digits=1)}: {difference.verdict()}"
                )
    return figures


# Performance's targets: {figure: (the figure it judges, "at least" or "at most", bound)}.
TARGETS = {
    "target.prelu_eager_tf": (
        "prelu_eager_tf.tensorflow.conv.eager_fwd.prelu.keras_layers_prelu.x_ours",
        "at least",
        2.0,
    ),
    "target.prelu_eager_jax": (
        "layers.jax.conv.eager_fwd.prelu.keras_layers_prelu.x_ours",
        "at least",
        2.0,
    ),
    "target.prelu_compiled_tf": (
        "layers.tensorflow.conv.jit_fwdbwd.prelu.keras_relu_prelu.x_ref",
        "at most",
        1.15,
    ),
}


def target_figures(values):
    """ "met" or "**missed**" for each of `TARGETS`, from the figures it judges."""
    verdicts = {}
    for name, (source, direction, bound) in TARGETS.items():
        ratio = float(values[source].rstrip("x"))
        met = ratio >= bound if direction == "at least" else ratio <= bound
        verdicts[name] = "met" if met else "**missed**"
    return verdicts


@functools.lru_cache(maxsize=1)
def figures():
    """`{name: text}`: every figure, from the committed results."""
    run_keys = ("variant", "learning_rate", "seed", "test_accuracy", "config")
    study = {
        "trained": _load(STUDY / "trained", *run_keys, "history"),
        "born_dead": _load(STUDY / "born_dead", "variant", "width", "depth", "born_dead"),
        "gradients": _load(STUDY / "gradients", *run_keys, "gradient_warnings"),
    }
    cures = _load(STUDY / "cures", *run_keys, "cure")
    values = {
        **cifar_figures(_load(CIFAR_RUNS, "arm", "seed", "test_accuracy")),
        **step_figures(json.loads(STEP_BENCHMARK.read_text())),
        **{
            name: text
            for prefix, path in LAYER_BENCHMARKS.items()
            for name, text in layer_figures(prefix, json.loads(path.read_text())).items()
        },
        **trained_figures(study["trained"]),
        **born_dead_figures(study["born_dead"]),
        **gradient_figures(study["gradients"]),
        **cures_figures(cures, study["trained"]),
    }
    return {**values, **target_figures(values)}


def render(text, values=None, source="the page"):
    """`text` with every marked figure replaced by its value today."""
    values = figures() if values is None else values

    def replace(match):
        name = match.group(1)
        if name not in values:
            raise KeyError(
                f"{source} marks a figure `{name}` that examples/figures.py does not compute"
            )
        return f"<!-- fig:{name} -->{values[name]}<!-- /fig -->"

    return MARKER.sub(replace, text)


def pages():
    """README.md, every documentation page and the study's report (its preface)."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "examples" / "DYING_RELU.md",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="Update the pages in place.")
    action.add_argument("--check", action="store_true", help="Exit 1 if a page is stale.")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for name, text in sorted(figures().items()):
            print(f"{name}: {text}")
        return 0
    stale = []
    for path in pages():
        text = path.read_text()
        new = render(text, source=path.relative_to(ROOT).as_posix())
        if new != text:
            stale.append(path.relative_to(ROOT).as_posix())
            if args.write:
                path.write_text(new)
    verb = "updated" if args.write else "stale (run `python examples/figures.py --write`)"
    for name in stale:
        print(f"{name}: {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
