"""What the CIFAR-10 example's `fit` costs per step beyond a bare training step.

One process, one arm: a bare `train_on_batch` step on one fixed batch, then `fit`
built up to the example's (its crop-and-flip `PyDataset`, validation, the
`EpochTimer` and `DeadUnitMonitor` callbacks), then the bare step again, so that
a drift of the machine's speed during the run shows as a gap between the two bare
figures. Each `fit` runs two epochs and reports the second (the first traces).
Random pixels: the timing does not depend on the images.

    python benchmarks/bench_cifar_fit.py                      # ReLU, 60 steps an epoch
    python benchmarks/bench_cifar_fit.py --arm prelu --steps 100
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from cifar10 import model as model_lib  # noqa: E402
from cifar10 import train  # noqa: E402

from keras_relu import diagnostics  # noqa: E402


def compiled(arm, total_steps):
    """`arm`'s model compiled as `train.train_arm` compiles it."""
    model = model_lib.build_model(arm, seed=0)
    optimizer = keras.optimizers.SGD(
        learning_rate=train.OneCycle(0.1, total_steps),
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def bare_step_seconds(model, images, labels, repeats=20):
    """Median seconds of `train_on_batch` on one fixed batch, after 3 warm-up steps."""
    for _ in range(3):
        model.train_on_batch(images, labels)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class EpochClock(keras.callbacks.Callback):
    """The last epoch's seconds, whole and from its first to its last training step."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.first_step_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last_step_ended, self.steps = time.perf_counter(), batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds = time.perf_counter() - self.epoch_started
        self.train_seconds = self.last_step_ended - self.first_step_started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", default="relu", choices=list(model_lib.ARMS))
    parser.add_argument("--steps", type=int, default=60, help="Training steps an epoch.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--validation", type=int, default=2000, help="Validation images.")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "validation"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.steps * args.batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    validation = (
        rng.integers(0, 256, (args.validation, 32, 32, 3)).astype("float32"),
        rng.integers(0, 10, args.validation),
    )
    batch = images[: args.batch_size].astype("float32"), labels[: args.batch_size]
    probe = images[: train.PROBE_SIZE].astype("float32")

    def callbacks():
        return [train.EpochTimer(), diagnostics.DeadUnitMonitor(probe, warn_above=None)]

    fits = [
        ("fit(PyDataset)", {}),
        ("+ validation", {"validation_data": validation, "validation_batch_size": 256}),
        ("+ the example's callbacks", {"callbacks": callbacks()}),
        (
            "the example's fit",
            {"validation_data": validation, "validation_batch_size": 256, "callbacks": callbacks()},
        ),
    ]
    total_steps = 2 * args.steps

    def bare():
        return bare_step_seconds(compiled(args.arm, total_steps), *batch)

    rows = [("bare train_on_batch", bare(), "")]
    for name, kwargs in fits:
        clock = EpochClock()
        kwargs = {**kwargs, "callbacks": [clock, *kwargs.get("callbacks", [])]}
        batches = train.AugmentedBatches(images, labels, args.batch_size, seed=0)
        compiled(args.arm, total_steps).fit(batches, epochs=2, verbose=0, **kwargs)
        rows.append((name, clock.train_seconds / clock.steps, clock.epoch_seconds / args.steps))
    rows.append(("bare train_on_batch again", bare(), ""))

    reference = statistics.mean([rows[0][1], rows[-1][1]])
    print(f"backend {keras.config.backend()}, arm {args.arm}, {args.steps} steps an epoch")
    print("| how | ms a step (training) | ms a step (whole epoch) | x bare (training) |")
    print("|---|---:|---:|---:|")
    for name, step, epoch in rows:
        epoch_ms = f"{1e3 * epoch:.1f}" if epoch else ""
        print(f"| {name} | {1e3 * step:.1f} | {epoch_ms} | {step / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
