"""What `GradientMonitor` costs in the CIFAR-10 example's CNN under `fit`, per epoch.

Three arms, each its own model (the example's ReLU CNN, compiled as the example
compiles it): no monitor, `GradientMonitor` at its defaults (a measurement at the
end of each epoch) and with `every=10`. Each arm first fits one epoch (tracing),
then the arms take turns, one epoch each, in a rotating order, for `--rounds`
rounds, so that a drift of the shared machine's speed hits every arm alike. An
epoch is timed from `on_epoch_begin` to the end of the monitor's `on_epoch_end`
(the clock is the last callback); the one-time setup of each `fit` (the monitor's
trace and first measurement at `on_train_begin`) is reported apart. Random pixels:
the timing does not depend on the images. Prints medians and ratios to no monitor.

    python benchmarks/bench_gradient_monitor.py                # 200 steps of 128, 5 rounds
    python benchmarks/bench_gradient_monitor.py --steps 300 --rounds 7
    python benchmarks/bench_gradient_monitor.py --direct   # one measurement vs one step

`--direct` times, in turns, 10 training steps (`train_on_batch`) and one measurement
(the monitor's `on_epoch_end` after a `fit`), and gives a measurement's cost as a share
of an epoch of `--steps` steps and of a full CIFAR-10 epoch (391 steps of 128): less
sensitive to the machine's drift than whole epochs, which the shared machine makes noisy.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from bench_cifar_fit import compiled  # noqa: E402

from keras_relu import diagnostics  # noqa: E402


class Clock(keras.callbacks.Callback):
    """Seconds of each epoch, and of `on_train_begin` for the callbacks listed before it
    (with `Clock(start=True)` listed first)."""

    def __init__(self, start=False):
        super().__init__()
        self.start = start
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.train_begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self.epoch_started)


def direct(args, images, labels, probe, repeats=7):
    """Seconds of one training step and of one measurement, medians of interleaved turns."""
    model = compiled("relu", 1000 * args.steps)
    # A one-step fit: its "first epoch" ends before BatchNorm settles, so no growth check.
    monitor = diagnostics.GradientMonitor(probe, growth_factor=None)
    batch = images[: args.batch_size], labels[: args.batch_size]
    model.fit(*batch, batch_size=args.batch_size, epochs=1, callbacks=[monitor], verbose=0)
    steps, measurements = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(10):
            model.train_on_batch(*batch)
        steps.append((time.perf_counter() - started) / 10)
        started = time.perf_counter()
        monitor.on_epoch_end(0, {})
        measurements.append(time.perf_counter() - started)
    step, measurement = statistics.median(steps), statistics.median(measurements)
    print(
        f"backend {keras.config.backend()}, batch {args.batch_size}, probe {args.probe} images, "
        f"{repeats} turns, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
        f"step {1e3 * step:.0f} ms, measurement {1e3 * measurement:.0f} ms "
        f"({measurement / step:.1f} steps): {100 * measurement / (args.steps * step):.2f}% of an "
        f"epoch of {args.steps} steps, {100 * measurement / (391 * step):.2f}% of a full "
        "CIFAR-10 epoch (391 steps)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="Training steps an epoch.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--probe", type=int, default=256, help="Probe images.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--direct", action="store_true", help="See the module docstring.")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "probe", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.steps * args.batch_size, 32, 32, 3), dtype=np.uint8)
    images = images.astype("float32")
    labels = rng.integers(0, 10, len(images))
    probe = (images[: args.probe], labels[: args.probe])
    if args.direct:
        direct(args, images, labels, probe)
        return 0
    arms = {
        "no monitor": None,
        "GradientMonitor() (epoch end)": {},
        "GradientMonitor(every=10)": {"every": 10},
    }
    models = {name: compiled("relu", 1000 * args.steps) for name in arms}
    epochs = {name: [] for name in arms}
    setups = {name: [] for name in arms}
    done = dict.fromkeys(arms, 0)

    def one_epoch(name):
        first, last = Clock(), Clock()
        monitors = [] if arms[name] is None else [diagnostics.GradientMonitor(probe, **arms[name])]
        started = time.perf_counter()
        models[name].fit(
            images,
            labels,
            batch_size=args.batch_size,
            epochs=done[name] + 1,
            initial_epoch=done[name],
            callbacks=[first, *monitors, last],
            verbose=0,
        )
        done[name] += 1
        return last.epochs[0], last.train_begin - first.train_begin, time.perf_counter() - started

    for name in arms:  # Warm-up: traces the train step and the monitor's gradient.
        print(f"warm-up: {name}: {one_epoch(name)[2]:.1f} s", flush=True)
    order = list(arms)
    for round_index in range(args.rounds):
        for name in order[round_index % 3 :] + order[: round_index % 3]:
            epoch, setup, _ = one_epoch(name)
            epochs[name].append(epoch)
            setups[name].append(setup)
            print(f"round {round_index}: {name}: epoch {epoch:.2f} s", flush=True)

    base = statistics.median(epochs["no monitor"])
    print(
        f"\nbackend {keras.config.backend()}, {args.steps} steps of {args.batch_size} an epoch, "
        f"probe {args.probe} images, {args.rounds} rounds, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end"
    )
    print("| arm | median epoch (s) | x no monitor (median of ratios per round) | setup (s) |")
    print("|---|---:|---:|---:|")
    for name in arms:
        ratios = [e / b for e, b in zip(epochs[name], epochs["no monitor"], strict=True)]
        print(
            f"| {name} | {statistics.median(epochs[name]):.2f} | "
            f"{statistics.median(ratios):.3f} (median epoch ratio "
            f"{statistics.median(epochs[name]) / base:.3f}) | "
            f"{statistics.median(setups[name]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
