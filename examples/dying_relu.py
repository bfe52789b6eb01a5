"""The dying ReLU, shown and caught: born dead (narrow, deep nets) and trained to death (CIFAR-10).

Two parts, each result its own JSON file written atomically, so a run can be split,
stopped and resumed (Ctrl-C exits with code 130; the same command resumes); the report
(`DYING_RELU.md` section, plots, `resistance.json`) is rebuilt from whatever files exist.
`--config` replaces the sizes with a JSON file of FULL's parts, keys and types, checked
before anything runs.

- `born_dead` (`dying/born_dead.py`): networks of width 2-4 and depth up to 12 fitted
  to |x|, hundreds of initializations per point in one vectorized model (Lu et al.
  2019): how often is a network constant at initialization, and after training?
- `trained` (`dying/trained.py`): a plain MLP on a CIFAR-10 subset, Adam at learning
  rates from comfortable to too high, every variant, 3 seeds: dead and inactive
  fractions per layer and epoch, test accuracy, `DeadUnitMonitor`'s warnings.
- `cures` (`dying/cures.py`): the same MLP and protocol at learning rates where ReLU dies
  and one where it does not, with each cure: `ReviveDeadUnits`, `clipnorm`, a warm-up
  and cosine decay schedule, RAI initialization, Leaky ReLU and PReLU swapped in.
- `gradients` (`dying/gradients.py`): the same MLP and sweep for ReLU, Leaky ReLU and
  PReLU with `GradientMonitor` every few batches: do the gradient norm and update
  ratio flag the learning rates at which ReLU dies, and how early?

    python examples/dying_relu.py --quick --data-dir ../shared/datasets/cifar10-jpeg.tar.gz
    python examples/dying_relu.py --part born_dead --out examples/results/dying_relu
    python examples/dying_relu.py --part trained --data-dir ... --out examples/results/dying_relu
    python examples/dying_relu.py --part cures --data-dir ... --out examples/results/dying_relu
    python examples/dying_relu.py --part gradients --data-dir ... --out examples/results/dying_relu
    python examples/dying_relu.py --report-only --out examples/results/dying_relu \\
        --markdown examples/DYING_RELU.md
    python examples/dying_relu.py --verify --part trained --cells 'relu_lr0.01_seed0' \\
        --data-dir ... --out examples/results/dying_relu

Every result records what produced it (`provenance`: commit, versions, config, command).
`--verify` reruns the committed cells that `--part` and `--cells` (a glob on the file
names, without `.json`) choose, with their recorded config, into a temporary folder,
and compares every figure (accuracies, losses, dead and inactive fractions, per epoch)
with `--tolerance`: it prints a table and exits with 1 where a figure differs.
"""

import argparse
import fnmatch
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

import keras_relu

# Runs as a script: the experiment's modules are in examples/dying/ and examples/cifar10/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10 import cli  # noqa: E402
from cifar10 import data as data_lib  # noqa: E402
from cifar10.train import provenance  # noqa: E402
from cifar10.train import write_result  # noqa: E402
from cifar10_compare import subset  # noqa: E402
from dying import born_dead  # noqa: E402
from dying import cures  # noqa: E402
from dying import gradients  # noqa: E402
from dying import report  # noqa: E402
from dying import trained  # noqa: E402

PARTS = ("born_dead", "trained", "cures", "gradients")
# Config keys that say how a cell was measured (its probes), not its sizes: a stored
# result measured otherwise is rerun and replaced, not refused.
PROTOCOL_KEYS = ("probe", "gradient_probe", "accuracy_probe", "probes")  # "probes": an old one.
TOLERANCE = 1e-6  # --verify's default: the runs are deterministic on one machine kind.
VARIANTS = born_dead.VARIANTS  # The default set.
ARMS = born_dead.ARMS  # Also accepted by --variants: ReLU with RAI (born_dead), crelu.
FULL = {
    "born_dead": {
        "runs": 200,
        "init_runs": 1000,
        "points": 64,
        "steps": 1000,
        "learning_rate": 3e-3,
        "seed": 0,
        "widths": [2, 3, 4],
        "depths": [1, 2, 3, 4, 5, 6, 8, 10, 12],
        "train_widths": [2, 4],
        "train_depths": [2, 4, 6, 8, 10],
    },
    "trained": {
        "train_images": 10000,
        "test_images": 5000,
        "epochs": 4,
        "batch_size": 128,
        "optimizer": "adam",
        "momentum": 0.9,
        "probe_images": 1000,
        "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2],
        "seeds": [0, 1, 2],
    },
    "gradients": {
        "train_images": 10000,
        "test_images": 5000,
        "epochs": 4,
        "batch_size": 128,
        "optimizer": "adam",
        "momentum": 0.9,
        "probe_images": 1000,
        "gradient_probe_images": 512,
        "accuracy_images": 1000,
        "every": 4,
        "learning_rates": [1e-3, 3e-3, 1e-2, 3e-2],
        "seeds": [0, 1, 2],
        # ReLU at a rate where it dies, with each remedy (`gradients.REMEDIES`).
        "remedies": ["clipnorm", "schedule"],
        "remedy_variant": "relu",
        "remedy_learning_rate": 1e-2,
    },
}
FULL["cures"] = {
    **FULL["trained"],
    "learning_rates": [1e-3, 1e-2, 3e-2],
    "arms": list(cures.ARMS),
    "clipnorm_healthy_lr": 1e-3,
    # Plain ReLU's results are trained/'s (the same protocol and seeds); it is rerun here
    # for these seeds only, next to the cures, as the time reference.
    "relu_seeds": [0],
}
QUICK = {
    "born_dead": {
        **FULL["born_dead"],
        "runs": 50,
        "init_runs": 200,
        "steps": 300,
        "widths": [2],
        "depths": [2, 4, 8],
        "train_widths": [2],
        "train_depths": [2, 8],
    },
    "trained": {
        **FULL["trained"],
        "train_images": 2000,
        "test_images": 1000,
        "epochs": 2,
        "learning_rates": [1e-3, 3e-2],
        "seeds": [0],
    },
    "gradients": {
        **FULL["gradients"],
        "train_images": 2000,
        "test_images": 1000,
        "epochs": 2,
        "learning_rates": [1e-3, 3e-2],
        "seeds": [0],
    },
}
QUICK["cures"] = {
    **QUICK["trained"],
    **{k: FULL["cures"][k] for k in ("arms", "clipnorm_healthy_lr")},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ",".join(VARIANTS)
    parser.add_argument(
        "--part", choices=("born_dead", "trained", "cures", "gradients", "all"), default="all"
    )
    parser.add_argument("--variants", default=names, help=f"Default: {names}")
    parser.add_argument(
        "--out", type=cli.results_folder, default="dying_relu_results", help="Results folder."
    )
    parser.add_argument(
        "--data-dir",
        help="Local CIFAR-10 (as for cifar10_compare.py). Default: keras.datasets.",
    )
    parser.add_argument("--cache-dir", default=str(data_lib.DEFAULT_CACHE_DIR))
    parser.add_argument(
        "--quick", action="store_true", help="A few-minute run with smaller sizes (QUICK)."
    )
    parser.add_argument(
        "--config",
        type=load_config,
        help="A JSON file replacing the sizes: an object of parts, each with FULL's keys.",
    )
    parser.add_argument("--report-only", action="store_true", help="Only rebuild the report.")
    parser.add_argument("--markdown", help="Also write the report below this file's preface.")
    # The reproduction check.
    parser.add_argument(
        "--verify",
        action="store_true",
        help="Rerun the stored cells (--part, --cells) and compare their figures.",
    )
    parser.add_argument(
        "--cells",
        default="*",
        help="With --verify: globs on the result file names, without .json, comma-separated "
        "(e.g. 'relu_lr0.01_seed*,gelu_lr0.01_seed0'). Default: every cell of --part.",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=f"With --verify: the largest difference allowed, absolute for figures up to 1 in "
        f"size, relative above. Default: {TOLERANCE:g} (the runs are deterministic on one "
        "machine kind and backend).",
    )
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(ARMS)
    if unknown:
        parser.error(f"unknown --variants {sorted(unknown)}; choose from {','.join(ARMS)}")
    if args.config is not None and not args.report_only:
        needed = ("born_dead", "trained") if args.part == "all" else (args.part,)
        missing = [part for part in needed if part not in args.config]
        if missing:
            parser.error(
                f"argument --config: has no {missing} sizes, which --part {args.part} needs. "
                f"Received parts: {sorted(args.config)}"
            )
    return args


# Keys a --config may add to FULL's (with an example of their type).
OPTIONAL = {"trained": {"initial_bias": 0.0}, "cures": {"initial_bias": 0.0, "clipnorm": 1.0}}
# Allowed values of the keys naming something, beyond their type.
CHOICES = {
    "optimizer": ("adam", "sgd"),
    "arms": cures.ARMS,
    "remedies": tuple(gradients.REMEDIES),
    "remedy_variant": gradients.VARIANTS,
}


def load_config(path):
    """argparse type for --config: the sizes in the JSON file `path`, checked against
    FULL: the parts it names, each with FULL's keys (and `OPTIONAL`'s), of FULL's types;
    counts >= 1, seeds >= 0, rates > 0, `momentum` in [0, 1)."""
    try:
        sizes = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise argparse.ArgumentTypeError(f"cannot read {path}: {reason}") from None
    if not isinstance(sizes, dict) or not sizes:
        raise argparse.ArgumentTypeError(
            f"{path} must hold a JSON object of parts {sorted(FULL)}. Received: {sizes!r:.80}"
        )
    for part, config in sizes.items():
        where = f"{path}: [{part!r}]"
        if part not in FULL:
            raise argparse.ArgumentTypeError(f"{where}: not a part; the parts: {sorted(FULL)}")
        if not isinstance(config, dict):
            raise argparse.ArgumentTypeError(f"{where} must be a JSON object of sizes.")
        schema = {**FULL[part], **OPTIONAL.get(part, {})}
        unknown = sorted(set(config) - set(schema))
        missing = sorted(set(FULL[part]) - set(config))
        if unknown or missing:
            raise argparse.ArgumentTypeError(
                f"{where} must have the keys {sorted(FULL[part])}"
                + (f" (optional: {sorted(OPTIONAL[part])})" if part in OPTIONAL else "")
                + f". Received: unknown keys {unknown}, missing keys {missing}"
            )
        for key, value in config.items():
            problem = _config_problem(key, value, schema[key])
            if problem:
                raise argparse.ArgumentTypeError(
                    f"{where}[{key!r}] must be {problem}. Received: {key}={value!r}"
                )
    return sizes


def _config_problem(key, value, example):
    """What `value` of the --config key `key` must be, or None if it is fine; `example`
    is FULL's value."""
    if isinstance(example, list):
        if not isinstance(value, list):
            return "a list"
        problems = [_config_problem(key, item, example[0]) for item in value]
        return next((f"a list of {p}" for p in problems if p), None)
    if isinstance(example, str):
        choices = CHOICES.get(key)
        if not isinstance(value, str) or (choices and value not in choices):
            return f"one of {list(choices)}" if choices else "a string"
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(example, int):
        if not isinstance(value, int) or isinstance(value, bool):
            return "an integer"
        lowest = 0 if "seed" in key else 1
        return None if value >= lowest else f"an integer >= {lowest}"
    if not number or not np.isfinite(value):
        return "a finite number"
    if key == "momentum":
        return None if 0 <= value < 1 else "in [0, 1)"
    if key == "initial_bias":
        return None
    return None if value > 0 else "a number > 0"


RERUN = "rerun that result"  # What deleting a damaged result file does.


def born_dead_path(out, variant, width, depth):
    return Path(out) / "born_dead" / f"{variant}_w{width}_d{depth}.json"


def trained_path(out, variant, learning_rate, seed):
    return Path(out) / "trained" / f"{variant}_lr{learning_rate:g}_seed{seed}.json"


def gradients_path(out, variant, learning_rate, seed, remedy=None):
    name = f"{variant}_lr{learning_rate:g}_seed{seed}" + (f"_{remedy}" if remedy else "")
    return Path(out) / "gradients" / f"{name}.json"


def _sizes(config):
    return {k: v for k, v in config.items() if k not in PROTOCOL_KEYS}


def _existing(path, config):
    """The stored result at `path` if made with `config`; None (rerun it) if made with
    the same sizes and another protocol (`PROTOCOL_KEYS`: how it was measured); raises if
    made with other sizes, or if it is not a whole result (`cli.ResultFileError`)."""
    if not path.exists():
        return None
    stored = cli.read_result(path, report.RESULT_KEYS[path.parent.name], redo=RERUN)
    if stored["config"] == config:
        return stored
    if _sizes(stored["config"]) == _sizes(config):
        old = {k: stored["config"].get(k) for k in PROTOCOL_KEYS if k in stored["config"]}
        new = {k: config[k] for k in PROTOCOL_KEYS if k in config}
        print(f"{path}: measured with {old or 'no recorded protocol'}, not {new}: rerun")
        return None
    raise ValueError(f"{path} was made with {stored['config']}, not {config}: use another --out.")


def run_born_dead(variants, config, out):
    common = {k: config[k] for k in ("points", "steps", "learning_rate", "seed")}
    for width in config["widths"]:
        for depth in config["depths"]:
            train = width in config["train_widths"] and depth in config["train_depths"]
            point = {**common, "runs": config["runs"] if train else config["init_runs"]}
            point["trained"] = train
            missing = [
                v
                for v in variants
                if _existing(born_dead_path(out, v, width, depth), point) is None
            ]
            if not missing:
                continue
            print(f"born dead: width {width}, depth {depth}, {len(missing)} variants", flush=True)
            alone = [v for v in missing if v in born_dead.ALONE]
            together = [v for v in missing if v not in born_dead.ALONE]
            results = {}
            for group in [together] * bool(together) + [[v] for v in alone]:
                results |= born_dead.run_point(group, width, depth, point, train=train)
            for variant, result in results.items():
                payload = {"variant": variant, "width": width, "depth": depth, "config": point}
                path = born_dead_path(out, variant, width, depth)
                write_result(path, payload | result, config)


def run_trained(variants, config, out, data_dir, cache_dir):
    variants = [v for v in variants if v not in born_dead.INITIALIZED_ARMS]
    (x_train, y_train), (x_test, y_test) = data_lib.load(data_dir, cache_dir)
    data = (
        subset(x_train, y_train, config["train_images"]),
        subset(x_test, y_test, config["test_images"]),
    )
    run_config = {k: v for k, v in config.items() if k not in ("learning_rates", "seeds")}
    run_config |= trained.protocol(config)
    for seed in config["seeds"]:
        for learning_rate in config["learning_rates"]:
            for variant in variants:
                path = trained_path(out, variant, learning_rate, seed)
                if _existing(path, run_config) is not None:
                    continue
                result = trained.train_run(variant, learning_rate, seed, data, run_config)
                write_result(path, result, config)
                print(
                    f"trained: {variant} lr {learning_rate:g} seed {seed}: "
                    f"test accuracy {result['test_accuracy']:.3f}, dead "
                    f"{result['history'].get('dead_fraction', [float('nan')])[-1]:.3f}",
                    flush=True,
                )


def cures_path(out, arm, learning_rate, seed):
    return Path(out) / "cures" / f"{arm}_lr{learning_rate:g}_seed{seed}.json"


def _clipnorm(data, config, out):
    """The clipnorm from plain ReLU's gradient norms, measured once and stored."""
    if "clipnorm" in config:  # Given, not measured (the measurement uses jax.grad).
        return config["clipnorm"]
    path = Path(out) / "cures" / report.NORMS_FILE
    healthy = config["clipnorm_healthy_lr"]
    if path.exists():
        return cli.read_result(path, ("clipnorm",), redo="measure it again")["clipnorm"]
    rates = sorted({healthy, *config["learning_rates"]})
    norms = cures.gradient_norms(data, config, rates)
    summary = {
        f"{lr:g}": {
            q: float(np.percentile(np.array(norms[lr]["steps"]), p))
            for q, p in (("median", 50), ("p90", 90), ("max", 100))
        }
        for lr in rates
    }
    clipnorm = cures.choose_clipnorm(norms, healthy)
    payload = {
        "clipnorm": clipnorm,
        "how": f"median per-variable gradient norm, plain ReLU, first epoch, lr {healthy:g}",
        "summary": summary,
        "by_lr": {f"{lr:g}": norms[lr] for lr in rates},
    }
    write_result(path, payload, config)
    print(f"cures: clipnorm {clipnorm:g} ({payload['how']})", flush=True)
    return clipnorm


def _rai_available():
    initializers = getattr(keras_relu, "initializers", None)
    return hasattr(initializers, "RandomizedAsymmetric")


def run_cures(config, out, data_dir, cache_dir):
    (x_train, y_train), (x_test, y_test) = data_lib.load(data_dir, cache_dir)
    data = (
        subset(x_train, y_train, config["train_images"]),
        subset(x_test, y_test, config["test_images"]),
    )
    run_config = {
        k: v
        for k, v in config.items()
        if k
        not in ("learning_rates", "seeds", "arms", "clipnorm_healthy_lr", "relu_seeds", "clipnorm")
    }
    run_config |= trained.protocol(config)
    clipnorm = _clipnorm(data, config, out)
    arms = [a for a in config["arms"] if a != "rai" or _rai_available()]
    if "rai" in config["arms"] and "rai" not in arms:
        print("cures: keras_relu.initializers.RandomizedAsymmetric missing: no rai arm", flush=True)
    # Seeds outermost and arms innermost: arms are interleaved in time (the machine's
    # speed drifts), and a stopped run leaves whole seeds.
    for seed in config["seeds"]:
        for learning_rate in config["learning_rates"]:
            for arm in arms:
                if arm == "relu" and seed not in config["relu_seeds"]:
                    continue
                path = cures_path(out, arm, learning_rate, seed)
                stored = _existing(path, run_config)
                settings = cures.cure_settings(arm, clipnorm, run_config)
                if stored is not None and stored["cure"] == settings:
                    continue
                result = cures.run_arm(arm, learning_rate, seed, data, run_config, clipnorm)
                write_result(path, result, config)
                print(
                    f"cures: {arm} lr {learning_rate:g} seed {seed}: test accuracy "
                    f"{result['test_accuracy']:.3f}, dead "
                    f"{result['history'].get('dead_fraction', [float('nan')])[-1]:.3f}, "
                    f"{result['train_seconds']:.0f} s",
                    flush=True,
                )


def run_gradients(variants, config, out, data_dir, cache_dir):
    """The `gradients` part: the variants of `gradients.VARIANTS` among `variants`, then
    the remedies."""
    (x_train, y_train), (x_test, y_test) = data_lib.load(data_dir, cache_dir)
    data = (
        subset(x_train, y_train, config["train_images"]),
        subset(x_test, y_test, config["test_images"]),
    )
    sweep = ("learning_rates", "seeds", "remedies", "remedy_variant", "remedy_learning_rate")
    run_config = {k: v for k, v in config.items() if k not in sweep}
    run_config |= gradients.protocol(config)
    runs = []
    for seed in config["seeds"]:  # Each seed's sweep, then its remedies.
        runs += [
            (variant, learning_rate, seed, None)
            for learning_rate in config["learning_rates"]
            for variant in variants
            if variant in gradients.VARIANTS
        ]
        runs += [
            (config["remedy_variant"], config["remedy_learning_rate"], seed, remedy)
            for remedy in config.get("remedies", [])
        ]
    for variant, learning_rate, seed, remedy in runs:
        path = gradients_path(out, variant, learning_rate, seed, remedy)
        if _existing(path, run_config) is not None:
            continue
        result = gradients.gradient_run(variant, learning_rate, seed, data, run_config, remedy)
        write_result(path, result, config)
        print(
            f"gradients: {path.stem}: test accuracy {result['test_accuracy']:.3f}, "
            f"{len(result['gradient_warnings'])} gradient warnings, "
            f"{result['train_seconds']:.0f} s",
            flush=True,
        )


# The reproduction check (--verify) ---------------------------------------------------

# What changes from run to run, or is not a figure: left out of the comparison.
NOT_FIGURES = {
    "provenance", "config", "cure", "train_seconds", "finished", "backend", "keras",
    "backend_version", "machine", "command",
}  # fmt: skip


def _figures(value, name=""):
    """`{name: leaf}` for every number, string, bool and None in a result, nested names
    joined as `history.val_accuracy[3]`, less `NOT_FIGURES`."""
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            if not name and key in NOT_FIGURES:
                continue
            found |= _figures(item, f"{name}.{key}" if name else str(key))
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found |= _figures(item, f"{name}[{index}]")
        return found
    return {name: value}


def _same(stored, rerun, tolerance):
    if (
        isinstance(stored, bool)
        or isinstance(rerun, bool)
        or not (isinstance(stored, int | float) and isinstance(rerun, int | float))
    ):
        return stored == rerun
    if math.isnan(stored) or math.isnan(rerun):
        return math.isnan(stored) and math.isnan(rerun)
    return abs(stored - rerun) <= tolerance * max(1.0, abs(stored))


def compare(stored, rerun, tolerance=TOLERANCE):
    """The figures that differ: `[(name, stored value, rerun value)]`, the headline
    figures (test accuracy, final dead and inactive fractions) first; a figure only
    one has gives None for the other."""
    old, new = _figures(stored), _figures(rerun)
    names = list(old) + [name for name in new if name not in old]
    differ = [
        (name, old.get(name), new.get(name))
        for name in names
        if name not in old or name not in new or not _same(old[name], new[name], tolerance)
    ]
    headline = ("test_accuracy", "history.dead_fraction[", "history.inactive_fraction[")
    return sorted(differ, key=lambda d: not d[0].startswith(headline))


def provenance_differences(stored, current):
    """What differs between a stored result's provenance and today's, as lines."""
    recorded = stored.get("provenance")
    if recorded is None:  # Written before results recorded it.
        lines = ["the stored result records no provenance (written before it was recorded)"]
        if stored.get("keras") not in (None, current["libraries"]["keras"]):
            lines.append(f"keras {stored['keras']} -> {current['libraries']['keras']}")
        if "finished" in stored:
            lines.append(f"it finished {stored['finished']}")
        return lines
    lines = []
    old_git, new_git = recorded.get("git") or {}, current.get("git") or {}
    if old_git.get("commit") != new_git.get("commit"):
        lines.append(f"commit {old_git.get('commit')} -> {new_git.get('commit')}")
    for git, when in ((old_git, "then"), (new_git, "now")):
        if git.get("clean") is False:
            lines.append(f"the tree was not clean {when}: {', '.join(git.get('changed') or [])}")
    for key in ("keras_relu", "python", "platform", "machine"):
        if recorded.get(key) != current.get(key):
            lines.append(f"{key} {recorded.get(key)} -> {current.get(key)}")
    old_libraries, new_libraries = recorded.get("libraries", {}), current["libraries"]
    for name in sorted(set(old_libraries) | set(new_libraries)):
        if old_libraries.get(name) != new_libraries.get(name):
            lines.append(f"{name} {old_libraries.get(name)} -> {new_libraries.get(name)}")
    return lines


def _stored_clipnorm(stored, out):
    if "clipnorm" in stored.get("cure", {}):
        return stored["cure"]["clipnorm"]
    path = Path(out) / "cures" / "gradient_norms.json"
    return json.loads(path.read_text())["clipnorm"] if path.exists() else None


def rerun_cell(part, stored, out, scratch, data_dir, cache_dir):
    """Reruns one stored cell of `part` with its recorded config into the folder
    `scratch`, through the part's own run function; returns the new result."""
    config = dict(stored["config"])
    if part == "born_dead":
        width, depth, variant = stored["width"], stored["depth"], stored["variant"]
        trained_point = [width] if config["trained"] else []
        grid = {
            **{k: config[k] for k in ("points", "steps", "learning_rate", "seed")},
            "runs": config["runs"],
            "init_runs": config["runs"],
            "widths": [width],
            "depths": [depth],
            "train_widths": trained_point,
            "train_depths": [depth] if config["trained"] else [],
        }
        run_born_dead([variant], grid, scratch)
        return json.loads(born_dead_path(scratch, variant, width, depth).read_text())
    learning_rate, seed = stored["learning_rate"], stored["seed"]
    config |= {"learning_rates": [learning_rate], "seeds": [seed]}
    if part == "trained":
        run_trained([stored["variant"]], config, scratch, data_dir, cache_dir)
        return json.loads(trained_path(scratch, stored["variant"], learning_rate, seed).read_text())
    if part == "cures":
        arm = stored["cure"]["arm"]
        config |= {"arms": [arm], "relu_seeds": [seed], "clipnorm_healthy_lr": 1e-3}
        clipnorm = _stored_clipnorm(stored, out)
        if clipnorm is not None or arm != "clipnorm":  # Only the clipnorm arm uses it.
            config["clipnorm"] = clipnorm
        run_cures(config, scratch, data_dir, cache_dir)
        return json.loads(cures_path(scratch, arm, learning_rate, seed).read_text())
    remedy, variant = stored.get("remedy"), stored["variant"]
    config |= {
        "remedies": [remedy] if remedy else [],
        "remedy_variant": variant,
        "remedy_learning_rate": learning_rate,
    }
    run_gradients([] if remedy else [variant], config, scratch, data_dir, cache_dir)
    return json.loads(gradients_path(scratch, variant, learning_rate, seed, remedy).read_text())


def _cells(out, parts, pattern):
    """`[(part, path)]`: the stored results of `parts` whose names match one of the
    comma-separated globs of `pattern`."""
    globs = pattern.split(",")
    return [
        (part, path)
        for part in parts
        for path in sorted((Path(out) / part).glob("*.json"))
        if path.name != "gradient_norms.json"
        and any(fnmatch.fnmatch(path.stem, glob) for glob in globs)
    ]


def verify(out, parts, pattern, data_dir, cache_dir, tolerance=TOLERANCE):
    """Reruns the stored cells of `parts` matching `pattern`, compares, prints a table;
    returns 0 if every figure agrees, 1 if one differs, 2 if nothing could be checked."""
    import keras

    cells = _cells(out, parts, pattern)
    if not cells:
        print(f"error: no results of {'/'.join(parts)} match {pattern!r} in {out}", file=sys.stderr)
        return 2
    current = provenance()
    backend = keras.config.backend()
    rows, failures = [], []
    for part, path in cells:
        stored = json.loads(path.read_text())
        made_on = stored.get("backend") or (stored.get("provenance") or {}).get("backend")
        cell = f"{part}/{path.stem}"
        if made_on is not None and made_on != backend:
            rows.append((cell, "-", "-", f"REFUSED: made on {made_on}, this is {backend}"))
            failures.append((cell, [], [f"set KERAS_BACKEND={made_on} to rerun it"]))
            continue
        print(f"verify: rerunning {cell}", flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            rerun = rerun_cell(part, stored, out, scratch, data_dir, cache_dir)
        differ = compare(stored, rerun, tolerance)
        figures = len(_figures(stored))
        accuracy = f"{stored.get('test_accuracy', float('nan')):.4f}"
        if "test_accuracy" in rerun:
            accuracy += f" -> {rerun['test_accuracy']:.4f}"
        rows.append((cell, str(figures), accuracy, f"DIFFERS: {len(differ)}" if differ else "ok"))
        if differ:
            explanations = provenance_differences(stored, current)
            old, new = stored["config"], rerun["config"]
            explanations += [
                f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
                for key in PROTOCOL_KEYS
                if old.get(key) != new.get(key)
            ]
            failures.append((cell, differ, explanations))
    widths = [max(len(row[i]) for row in [VERIFY_HEADER, *rows]) for i in range(4)]
    print(f"\nReproduction check, tolerance {tolerance:g} (absolute up to 1, relative above):")
    for row in [VERIFY_HEADER, tuple("-" * w for w in widths), *rows]:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)))
    for cell, differ, explanations in failures:
        print(f"\n{cell}:")
        for name, old, new in differ[:MAX_DIFFERENCES_SHOWN]:
            print(f"  {name}: stored {old!r}, rerun {new!r}")
        if len(differ) > MAX_DIFFERENCES_SHOWN:
            print(f"  ... and {len(differ) - MAX_DIFFERENCES_SHOWN} more figures")
        for line in explanations:
            print(f"  provenance: {line}")
    print(f"\n{len(cells) - len(failures)} of {len(cells)} cells reproduced.")
    return 1 if failures else 0


VERIFY_HEADER = ("cell", "figures", "test accuracy", "result")
MAX_DIFFERENCES_SHOWN = 8


def main(argv=None):
    """Runs the command line `argv`; returns the exit code (2: an error, 130: Ctrl-C)."""
    args = parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # Results are written whole: rerunning resumes.
        return cli.interrupted()


def _run(args):
    out = Path(args.out)
    if args.verify:
        parts = PARTS if args.part == "all" else (args.part,)
        try:
            return verify(out, parts, args.cells, args.data_dir, args.cache_dir, args.tolerance)
        except (data_lib.DataError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    sizes = args.config or (QUICK if args.quick else FULL)
    variants = args.variants.split(",")
    try:
        if not args.report_only and args.part in ("born_dead", "all"):
            run_born_dead(variants, sizes["born_dead"], out)
        if not args.report_only and args.part in ("trained", "all"):
            run_trained(variants, sizes["trained"], out, args.data_dir, args.cache_dir)
        if not args.report_only and args.part in ("cures", "all") and "cures" in sizes:
            run_cures(sizes["cures"], out, args.data_dir, args.cache_dir)
        if not args.report_only and args.part == "gradients":  # Not part of "all".
            run_gradients(variants, sizes["gradients"], out, args.data_dir, args.cache_dir)
        if args.markdown and Path(args.markdown).exists() and not _has_results(out):
            raise ValueError(
                f"{out} holds no results: {args.markdown} is left as it is, not replaced by "
                "an empty report (is --out right?)."
            )
        written = report.write_report(out, args.markdown)
    except (data_lib.DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("Report:", ", ".join(str(path) for path in written))
    return 0


def _has_results(out):
    return any(next((Path(out) / part).glob("*.json"), None) for part in FULL)


if __name__ == "__main__":
    sys.exit(main())
