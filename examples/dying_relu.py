"""The dying ReLU, shown and caught: born dead (narrow, deep nets) and trained to death (CIFAR-10).

Two parts, each result its own JSON file written atomically, so a run can be split,
stopped and resumed; the report (`DYING_RELU.md` section, plots, `resistance.json`)
is rebuilt from whatever files exist.

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
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import keras_relu

# Runs as a script: the experiment's modules are in examples/dying/ and examples/cifar10/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10 import data as data_lib  # noqa: E402
from cifar10.train import write_json_atomically  # noqa: E402
from cifar10_compare import subset  # noqa: E402
from dying import born_dead  # noqa: E402
from dying import cures  # noqa: E402
from dying import gradients  # noqa: E402
from dying import report  # noqa: E402
from dying import trained  # noqa: E402

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
        "probes": "random rows",  # Not the first rows: the data is stored class by class.
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
    **{k: FULL["cures"][k] for k in ("arms", "clipnorm_healthy_lr", "relu_seeds")},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ",".join(VARIANTS)
    parser.add_argument(
        "--part", choices=("born_dead", "trained", "cures", "gradients", "all"), default="all"
    )
    parser.add_argument("--variants", default=names, help=f"Default: {names}")
    parser.add_argument("--out", default="dying_relu_results", help="Results folder.")
    parser.add_argument(
        "--data-dir",
        help="Local CIFAR-10 (as for cifar10_compare.py). Default: keras.datasets.",
    )
    parser.add_argument("--cache-dir", default=str(data_lib.DEFAULT_CACHE_DIR))
    parser.add_argument(
        "--quick", action="store_true", help="A few-minute run with smaller sizes (QUICK)."
    )
    parser.add_argument("--config", help="A JSON file replacing the sizes (FULL's keys).")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild the report.")
    parser.add_argument("--markdown", help="Also write the report below this file's preface.")
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(ARMS)
    if unknown:
        parser.error(f"unknown --variants {sorted(unknown)}; choose from {','.join(ARMS)}")
    return args


def born_dead_path(out, variant, width, depth):
    return Path(out) / "born_dead" / f"{variant}_w{width}_d{depth}.json"


def trained_path(out, variant, learning_rate, seed):
    return Path(out) / "trained" / f"{variant}_lr{learning_rate:g}_seed{seed}.json"


def gradients_path(out, variant, learning_rate, seed, remedy=None):
    name = f"{variant}_lr{learning_rate:g}_seed{seed}" + (f"_{remedy}" if remedy else "")
    return Path(out) / "gradients" / f"{name}.json"


def _existing(path, config):
    """The stored result at `path` if made with `config`; raises if made with another."""
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    if stored["config"] != config:
        raise ValueError(
            f"{path} was made with {stored['config']}, not {config}: use another --out."
        )
    return stored


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
                write_json_atomically(born_dead_path(out, variant, width, depth), payload | result)


def run_trained(variants, config, out, data_dir, cache_dir):
    variants = [v for v in variants if v not in born_dead.INITIALIZED_ARMS]
    (x_train, y_train), (x_test, y_test) = data_lib.load(data_dir, cache_dir)
    data = (
        subset(x_train, y_train, config["train_images"]),
        subset(x_test, y_test, config["test_images"]),
    )
    run_config = {k: v for k, v in config.items() if k not in ("learning_rates", "seeds")}
    for seed in config["seeds"]:
        for learning_rate in config["learning_rates"]:
            for variant in variants:
                path = trained_path(out, variant, learning_rate, seed)
                if _existing(path, run_config) is not None:
                    continue
                result = trained.train_run(variant, learning_rate, seed, data, run_config)
                write_json_atomically(path, result)
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
    if "clipnorm" in config:  # Given, not measured.
        return config["clipnorm"]
    path = Path(out) / "cures" / "gradient_norms.json"
    healthy = config["clipnorm_healthy_lr"]
    if path.exists():
        return json.loads(path.read_text())["clipnorm"]
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
    write_json_atomically(path, payload)
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
                write_json_atomically(path, result)
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
        write_json_atomically(path, result)
        print(
            f"gradients: {path.stem}: test accuracy {result['test_accuracy']:.3f}, "
            f"{len(result['gradient_warnings'])} gradient warnings, "
            f"{result['train_seconds']:.0f} s",
            flush=True,
        )


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    sizes = QUICK if args.quick else FULL
    if args.config:
        sizes = json.loads(Path(args.config).read_text())
    variants = args.variants.split(",")
    try:
        if not args.report_only and args.part in ("born_dead", "all"):
            run_born_dead(variants, sizes["born_dead"], out)
        if not args.report_only and args.part in ("trained", "all"):
            run_trained(variants, sizes["trained"], out, args.data_dir, args.cache_dir)
        if not args.report_only and args.part in ("cures", "all"):
            if "cures" in sizes:
                run_cures(sizes["cures"], out, args.data_dir, args.cache_dir)
            elif args.part == "cures":
                raise ValueError("the --config has no 'cures' sizes")
        if not args.report_only and args.part == "gradients":  # Not part of "all".
            run_gradients(variants, sizes["gradients"], out, args.data_dir, args.cache_dir)
    except (data_lib.DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = report.write_report(out, args.markdown)
    print("Report:", ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
