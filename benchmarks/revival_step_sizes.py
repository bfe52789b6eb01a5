"""How large the revived entries' first steps are, against their layer's ordinary ones.

An MLP 3072-128-128-128-10 (ReLU, He init) trains on CIFAR-10 (or random images) with
Adam at `--lr` (1e-2: a rate at which ReLU units die) and batch 128. At step 40 and at
step 280 its dead units (on a fresh 256-image probe) are revived with each
`reset_optimizer` mode, from the same trained state; then for the next 10 steps every
kernel entry's |update| is divided by the median |update| of the ordinary (not revived)
entries of the same kernel. Printed per step: the median of that ratio over the revived
incoming entries (the revived units' kernel columns) and over the revived outgoing
entries (their rows in the next layer's kernel), with the 90th percentile in brackets;
and the same for the ordinary entries (median 1 by construction), for scale.

    python benchmarks/revival_step_sizes.py                      # CIFAR-10 if it is at hand
    python benchmarks/revival_step_sizes.py --random             # random images
    python benchmarks/revival_step_sizes.py --at 40 280 --lr 1e-2 --steps 10

Issue 29's figures (steps 1-10, incoming / outgoing), for comparison: both moments zeroed
14-17 / 16-32 at step 40, 38-100 / 49-152 at step 280; both kept 0.6-2.3 / 2.7-8 and
4-7 / 28-49; first moment zeroed, second set to its row/column's kept mean 0-0.2 /
0.4-1.7 and 0-0.4 / 3.4-6.6.
"""

import argparse
import sys
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]  # This checkout's keras_relu.

from keras_relu import diagnostics  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
MODES = {"neighbors (True)": True, "zero": "zero", "keep (False)": False}
HIDDEN = ("d1", "d2", "d3")
CONSUMER = {"d1": "d2", "d2": "d3", "d3": "logits"}


def load(random, train_rows, seed):
    if not random:
        from cifar10 import data

        candidates = [DATA, Path("/work/shared/datasets/cifar10-jpeg.tar.gz")]
        found = next((path for path in candidates if path.exists()), None)
        if found is not None:
            (x, y), _ = data.load(found)
            rows = diagnostics.probe_rows(len(x), train_rows, labels=y, seed=seed)
            x = x[rows].reshape(train_rows, -1).astype("float32") / 255.0
            return x - x.mean(axis=0), y[rows].reshape(-1), "CIFAR-10"
        print("CIFAR-10 not found: random images", file=sys.stderr)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(train_rows, 3072)).astype("float32") * 0.25
    return x, rng.integers(0, 10, train_rows), "random images"


def build(lr, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3072,))
    x = inputs
    for name in HIDDEN:
        x = keras.layers.Dense(128, "relu", kernel_initializer="he_normal", name=name)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    model.compile(
        optimizer=keras.optimizers.Adam(lr), loss=keras.losses.SparseCategoricalCrossentropy(True)
    )
    return model


def train(model, x, y, start, steps, batch=128):
    for step in range(start, start + steps):
        rows = np.arange(step * batch, (step + 1) * batch) % len(x)
        model.train_on_batch(x[rows], y[rows])


def kernels(model):
    return {layer.name: keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers[1:]}


def measure(x, y, lr, at, steps, mode, seed):
    """Per step after the revival: (median, p90) of the revived incoming and outgoing
    entries' |update| over their kernel's ordinary median; and the units revived."""
    model = build(lr, seed)
    train(model, x, y, 0, at)
    probe = diagnostics.sample_probe(x, 256, seed=seed + at)
    report = diagnostics.revive_dead_units(model, probe, reset_optimizer=mode, seed=seed)
    directions = {}  # Per kernel: its revived incoming entries, its revived outgoing ones.
    for name in HIDDEN:
        units = report.units.get(name, [])
        incoming = np.zeros(model.get_layer(name).kernel.shape, bool)
        incoming[:, units] = True
        directions.setdefault(name, {})["incoming"] = incoming
        consumer = CONSUMER[name]
        outgoing = np.zeros(model.get_layer(consumer).kernel.shape, bool)
        outgoing[units, :] = True
        directions.setdefault(consumer, {})["outgoing"] = outgoing
    masks = {name: np.logical_or.reduce(list(d.values())) for name, d in directions.items()}
    rows = []
    for step in range(steps):
        before = kernels(model)
        train(model, x, y, at + step, 1)
        after = kernels(model)
        pooled = {"incoming": [], "outgoing": [], "ordinary": []}
        for name, mask in masks.items():
            moved = np.abs(after[name] - before[name])
            if mask.all() or not mask.any():
                continue
            ordinary = np.median(moved[~mask])
            pooled["ordinary"].append(moved[~mask] / ordinary)
            for direction, entries in directions[name].items():
                pooled[direction].append(moved[entries] / ordinary)
        rows.append(
            {
                direction: (np.median(np.concatenate(v)), np.percentile(np.concatenate(v), 90))
                if v and np.concatenate(v).size
                else (np.nan, np.nan)
                for direction, v in pooled.items()
            }
        )
    return rows, {name: len(report.units.get(name, [])) for name in HIDDEN}


def pooled_names():
    return ("incoming", "outgoing", "ordinary")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--at", type=int, nargs="+", default=[40, 280])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--random", action="store_true", help="random images, not CIFAR-10")
    args = parser.parse_args(argv)
    if args.lr <= 0 or args.steps < 1 or args.train_rows < 256 or min(args.at) < 1:
        parser.error("--lr > 0, --steps >= 1, --train-rows >= 256 and --at >= 1 are needed")
    x, y, source = load(args.random, args.train_rows, args.seed)
    print(
        f"MLP 3072-128-128-128-10, Adam {args.lr:g}, batch 128, {source} ({len(x)} rows), "
        f"backend {keras.config.backend()}, seed {args.seed}"
    )
    print("revived entry's |step| / its kernel's ordinary median |step|: median [p90]")
    for at in args.at:
        for label, mode in MODES.items():
            rows, revived = measure(x, y, args.lr, at, args.steps, mode, args.seed)
            print(f"\nrevival at step {at}, reset_optimizer={label}: units revived {revived}")
            print("step  incoming           outgoing           ordinary (for scale)")
            for step, row in enumerate(rows, 1):
                cells = [f"{row[d][0]:7.2f} [{row[d][1]:7.2f}]" for d in pooled_names()]
                print(f"{step:4d}  " + "  ".join(cells))
            for direction in ("incoming", "outgoing"):
                medians = [row[direction][0] for row in rows]
                span = f"{min(medians):.2f}-{max(medians):.2f}"
                print(f"      {direction} steps 1-{args.steps}: {span}")


if __name__ == "__main__":
    main()
