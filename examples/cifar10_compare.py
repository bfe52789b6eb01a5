"""Compares the ReLU-family variants on CIFAR-10 with one small CNN.

Every arm trains the same airbench-style network (`cifar10/model.py`) with the same
protocol: SGD with Nesterov momentum 0.9, batch 128, weight decay 5e-4 (not on
PReLU's alpha), a one-cycle learning rate, random crops and flips, and paired
seeds (a seed gives every arm the same initial weights and batches). Each finished
(arm, seed) is saved as a JSON file, so a run can be split and resumed; the report
(CSV, Markdown, plots, best models) is regenerated from all of them. Ctrl-C exits with
code 130 and the same command resumes; a bad argument, or a run file that is not whole
(named, to delete), is a one-line error with exit code 2 (`cifar10/cli.py`).

    python examples/cifar10_compare.py --quick --data-dir ../shared/datasets/cifar10-jpeg.tar.gz
    python examples/cifar10_compare.py --variants relu,gelu --seeds 0,1 --out examples/results
    python examples/cifar10_compare.py --report-only --out examples/results
"""

import argparse
import sys
from pathlib import Path

# Runs as a script: the experiment's modules are in examples/cifar10/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10 import cli  # noqa: E402
from cifar10 import quiet  # noqa: E402

if __name__ == "__main__":
    quiet.silence_tensorflow_logs()  # Before Keras is imported.

import numpy as np  # noqa: E402
from cifar10 import data as data_lib  # noqa: E402
from cifar10 import model as model_lib  # noqa: E402
from cifar10 import report  # noqa: E402
from cifar10 import train  # noqa: E402

# A smoke run of a few minutes on 2 CPU cores: the reference, a learned slope and the
# full comparison's leader; 5 epochs of 5,000 images take every arm past 50% test accuracy.
QUICK = {
    "variants": "relu,prelu,gelu",
    "limit_train": 5000,
    "limit_test": 1000,
    "epochs": 5,
    "seeds": [0],
}
PROTOCOL = {"peak_lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arms = ",".join(model_lib.ARMS)
    parser.add_argument("--variants", default=arms, help=f"Comma-separated arms. Default: {arms}")
    epochs = report.FULL_PROTOCOL["epochs"]
    count = cli.positive_int
    parser.add_argument("--epochs", type=count, default=epochs, help=f"Default: {epochs}.")
    parser.add_argument("--batch-size", type=count, default=128, help="Default: 128.")
    parser.add_argument(
        "--seeds", type=cli.seed_list, default=[0, 1], help="Comma-separated seeds. Default: 0,1."
    )
    parser.add_argument("--limit-train", type=count, help="Use N training images (a fixed subset).")
    parser.add_argument("--limit-test", type=count, help="Use N test images (a fixed subset).")
    parser.add_argument(
        "--out", type=cli.results_folder, default="cifar10_results", help="Results folder."
    )
    parser.add_argument(
        "--data-dir",
        help="Local CIFAR-10: a cifar-10-batches-py folder, a train/<class>/*.jpg folder "
        "or a .tar.gz of either. Default: keras.datasets (downloads once).",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(data_lib.DEFAULT_CACHE_DIR),
        help="Decoded arrays and extracted archives. Default: %(default)s",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A smoke run of a few minutes: "
        + ", ".join(f"--{key.replace('_', '-')} {_shown(value)}" for key, value in QUICK.items())
        + " unless given explicitly.",
    )
    parser.add_argument("--report-only", action="store_true", help="Only regenerate the report.")
    parser.add_argument("--markdown", help="Also write the report's Markdown to this file.")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    unknown = set(args.variants.split(",")) - set(model_lib.ARMS)
    if unknown:
        parser.error(f"unknown --variants {sorted(unknown)}; choose from {arms}")
    return args


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, list) else value


def subset(images, labels, limit):
    """A fixed, seed-independent random subset, so classes stay balanced."""
    if limit is None or limit >= len(images):
        return images, labels
    rows = np.sort(np.random.default_rng(0).permutation(len(images))[:limit])
    return images[rows], labels[rows]


def main(argv=None):
    """Runs the command line `argv`; returns the exit code (2: an error, 130: Ctrl-C)."""
    args = parse_args(argv)
    try:
        return _run(args)
    except cli.ResultFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Results are written whole: rerunning resumes.
        return cli.interrupted()


def _run(args):
    out = Path(args.out)
    # Every result file is checked before anything trains: a damaged one is named now,
    # not after hours of training the arms before it.
    runs = report.load_runs(out)
    if args.report_only and not runs and args.markdown and Path(args.markdown).exists():
        print(
            f"error: {out / 'runs'} holds no finished runs: {args.markdown} is left as it is, "
            "not replaced by an empty report (is --out right?).",
            file=sys.stderr,
        )
        return 2
    if not args.report_only:
        try:
            (x_train, y_train), (x_test, y_test) = data_lib.load(args.data_dir, args.cache_dir)
        except data_lib.DataError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        data = (subset(x_train, y_train, args.limit_train), subset(x_test, y_test, args.limit_test))
        config = {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            **PROTOCOL,
            "train_images": len(data[0][0]),
            "test_images": len(data[1][0]),
        }
        for seed in args.seeds:
            for arm in args.variants.split(","):
                existing = report.load_run(train.run_path(out, arm, seed))
                if existing is not None:
                    if existing["config"] != config:
                        print(
                            f"error: {train.run_path(out, arm, seed)} was made with "
                            f"{existing['config']}, not {config}; use another --out.",
                            file=sys.stderr,
                        )
                        return 2
                    print(f"{arm}, seed {seed}: done already, skipped.")
                    continue
                print(f"{arm}, seed {seed}: training.")
                result = train.train_arm(arm, seed, data, config, out)
                print(f"{arm}, seed {seed}: test accuracy {100 * result['test_accuracy']:.2f}%.")
    written = report.write_report(out, args.markdown)
    smoke = report.smoke_run_reason(report.load_runs(out))
    if smoke:
        print(f"A smoke run ({smoke}): no verdicts against published results;")
        print("the full comparison is in examples/RESULTS.md.")
    print("Report:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
