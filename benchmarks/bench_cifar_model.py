"""Training-step time of the CIFAR-10 example's CNN with each activation, against ReLU.

The issue's target: every non-CReLU arm within 5% of ReLU's seconds per epoch. An
epoch is a fixed number of identical steps, so the ratio of median step times is
the ratio of epoch times, without the data pipeline's noise. The arms' steps are
timed round-robin (each repeat times every arm once), so load drifts hit all alike;
"paired" is the median over repeats of an arm's step over ReLU's in the same repeat,
which a drift between repeats leaves alone.

    python benchmarks/bench_cifar_model.py                # every arm, 30 repeats
    python benchmarks/bench_cifar_model.py --arms relu,prelu,gelu --repeats 10
    python benchmarks/bench_cifar_model.py --repeats 20 --warmup 3 \
        --json benchmarks/results_cifar_model.json          # README's "Which one" table

`--json` writes the medians, ratios and the run's setting (machine, versions, command)
for `examples/choose_variant.py`, which builds README's table from it.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from cifar10 import quiet  # noqa: E402

if __name__ == "__main__":
    quiet.silence_tensorflow_logs()  # Before Keras is imported.

import keras  # noqa: E402
import numpy as np  # noqa: E402
from cifar10 import model as model_lib  # noqa: E402
from cifar10.train import write_json_atomically  # noqa: E402


def compiled_step(arm, batch):
    """A zero-argument callable running one SGD step of `arm`'s model on `batch`."""
    model = model_lib.build_model(arm, seed=0)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = batch
    return lambda: model.train_on_batch(x, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", default=",".join(model_lib.ARMS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", help="Also write the results to this file (atomically).")
    args = parser.parse_args(argv)
    arms = args.arms.split(",")
    if "relu" not in arms:
        parser.error("--arms must include relu, the reference")

    rng = np.random.default_rng(0)
    batch = (
        rng.integers(0, 256, (args.batch_size, 32, 32, 3)).astype("float32"),
        rng.integers(0, 10, args.batch_size),
    )
    load_before = os.getloadavg()
    steps = {arm: compiled_step(arm, batch) for arm in arms}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {arm: [] for arm in arms}
    for _ in range(args.repeats):
        for arm, step in steps.items():
            started = time.perf_counter()
            step()
            times[arm].append(time.perf_counter() - started)
    medians = {arm: statistics.median(t) for arm, t in times.items()}
    paired = {
        arm: statistics.median(a / r for a, r in zip(t, times["relu"], strict=True))
        for arm, t in times.items()
    }
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"

    print(
        f"backend {keras.config.backend()}, batch {args.batch_size}, {args.repeats} repeats, {load}"
    )
    print("| arm | median step ms | x ReLU | x ReLU, paired | within 5% (paired) |")
    print("|---|---|---|---|---|")
    for arm in arms:
        ratio = medians[arm] / medians["relu"]
        crelu = model_lib.ARMS[arm].variant == "crelu"
        verdict = "(CReLU: not a target)" if crelu else ("yes" if paired[arm] <= 1.05 else "NO")
        print(f"| {arm} | {medians[arm] * 1e3:.1f} | {ratio:.3f} | {paired[arm]:.3f} | {verdict} |")
    if args.json:
        write_json_atomically(
            args.json,
            {
                "command": " ".join(["python", *sys.argv]),
                "backend": keras.config.backend(),
                "keras": keras.__version__,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "batch_size": args.batch_size,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "load": load,
                "arms": {
                    arm: {
                        "median_step_ms": medians[arm] * 1e3,
                        "x_relu": medians[arm] / medians["relu"],
                        "x_relu_paired": paired[arm],
                    }
                    for arm in arms
                },
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
