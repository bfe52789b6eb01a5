"""Training one arm on one seed, and the resumable results folder.

Each finished (arm, seed) is one JSON file, `runs/<arm>_seed<seed>.json`, with its
configuration and per-epoch history, written atomically; a run that finds its file
skips that pair. The best model of each arm is kept as `models/<arm>.keras`, and
`logs/<arm>_seed<seed>.csv` (Keras's `CSVLogger`) gets each epoch's figures as it
ends, the per-layer dead-unit figures included; the terminal gets a compact line.
"""

import contextlib
import importlib
import importlib.metadata
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

import keras_relu
from keras_relu import diagnostics

from . import model as model_lib

PROBE_SIZE = 512  # Training images the dead-unit figures are measured on.
PROBE_SEED = 0  # One stratified probe for every arm and seed: their figures are paired.
# Result folders: a tree that differs from its commit only there is still "clean".
RESULT_FOLDERS = ("examples/results", "saved_models")


@keras.saving.register_keras_serializable(package="cifar10_compare")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate: linear warm-up to `peak`, then linear decay to 0.

    ```
    lr(step) = peak * (start + (1 - start) * step / warmup)        step < warmup
             = peak * (total - step) / (total - warmup)            otherwise
    ```

    Args:
        peak: The highest learning rate.
        total_steps: Steps of the whole run.
        warmup_fraction: Share of the steps spent warming up. Default: 0.25.
        start: Starting learning rate as a fraction of `peak`. Default: 0.1.
    """

    def __init__(self, peak, total_steps, warmup_fraction=0.25, start=0.1):
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_fraction = warmup_fraction
        self.start = start

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(1.0, self.warmup_fraction * self.total_steps)
        rising = self.start + (1.0 - self.start) * step / warmup
        falling = ops.maximum(0.0, (self.total_steps - step) / max(1.0, self.total_steps - warmup))
        return self.peak * ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "start": self.start,
        }


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches with random crops (zero padding 4) and horizontal flips.

    The images' order and the augmentation come from a NumPy generator seeded with
    `seed`; `fit` then visits the batches in an order drawn from Python's `random`,
    which `model.build_model` seeds with the same seed. So every arm trained with one
    seed sees the same batches (a test checks), the pairing the report relies on.
    """

    def __init__(self, images, labels, batch_size, seed, pad=4):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.pad = batch_size, pad
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images, count = self.images[rows], len(rows)
        size = images.shape[1]
        padded = np.pad(images, ((0, 0), (self.pad,) * 2, (self.pad,) * 2, (0, 0)))
        top, left = self.rng.integers(0, 2 * self.pad + 1, size=(2, count))
        offsets = np.arange(size)
        row_index = (top[:, None] + offsets)[:, :, None]
        column_index = (left[:, None] + offsets)[:, None, :]
        crops = padded[np.arange(count)[:, None, None], row_index, column_index]
        flips = self.rng.random(count) < 0.5
        crops[flips] = crops[flips, :, ::-1]
        return crops.astype("float32"), self.labels[rows]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (training and validation) to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self.started


class CompactProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, showing only the figures in `keys`, fractions as percentages.

    `DeadUnitMonitor` adds two figures per activation layer to each epoch's logs (16 in
    the example's CNN); they go to `CSVLogger` and the run's JSON, while the bar keeps
    a line short enough to read. Keys missing from the logs are left out. The epoch's
    seconds are the time Keras prints after the step count. The network's dead and
    inactive fractions end the epoch line as people read them (`dead 0.0%`), not in
    Keras's `0.0000e+00`.

    Args:
        keys: The log keys Keras's bar shows, in this order. Default: `COMPACT_KEYS`.
        percent_keys: `{log key: label}` shown after them as `label 12.5%`. Default:
            `PERCENT_KEYS`.
    """

    COMPACT_KEYS = ("loss", "accuracy", "val_accuracy")
    PERCENT_KEYS = {
        "dead_fraction": "dead",
        "inactive_fraction": "inactive",  # From `DeadUnitMonitor` where it measures it.
    }

    def __init__(self, keys=COMPACT_KEYS, percent_keys=None):
        super().__init__()
        self.keys = tuple(keys)
        self.percent_keys = dict(self.PERCENT_KEYS if percent_keys is None else percent_keys)

    def _compact(self, logs):
        logs = logs or {}
        return {key: logs[key] for key in self.keys if key in logs}

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, self._compact(logs))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        percentages = "".join(
            f" - {label} {100 * float(logs[key]):.1f}%"
            for key, label in self.percent_keys.items()
            if key in logs
        )
        if not percentages:
            super().on_epoch_end(epoch, self._compact(logs))
            return
        # Keras's bar ends its epoch line with a newline: catch it, and end it ourselves.
        line = io.StringIO()
        with contextlib.redirect_stdout(line):
            super().on_epoch_end(epoch, self._compact(logs))
        text = line.getvalue()
        if text.endswith("\n"):
            text = f"{text[:-1]}{percentages}\n"
        sys.stdout.write(text)
        sys.stdout.flush()


def backend_version():
    """The version of the library Keras runs on (TensorFlow's, JAX's or torch's): each
    backend is named after its module."""
    return importlib.import_module(keras.config.backend()).__version__


def run_path(out_dir, arm, seed):
    return Path(out_dir) / "runs" / f"{arm}_seed{seed}.json"


def write_text_atomically(path, text):
    """Writes `text` to `path` through a temporary file: a crash leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)


def write_json_atomically(path, payload):
    write_text_atomically(path, json.dumps(payload, indent=1))


def _git(*args):
    """Git's output in this checkout, or None without git or a repository."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def _installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance(config=None):
    """What produced a result: code, libraries, machine, configuration and command.

    `git.clean` is whether the checkout matched its commit outside `RESULT_FOLDERS`
    (a run writes its results there); `git.changed` lists what differed (up to 20
    paths). Without git, `git` is None. `libraries` has every backend installed,
    not only the one Keras ran on (`backend`).
    """
    commit = _git("rev-parse", "HEAD")
    git = None
    if commit is not None:
        excluded = [f":(top,exclude){folder}" for folder in RESULT_FOLDERS]
        status = _git("status", "--porcelain", "--", ":(top).", *excluded)
        changed = None if status is None else [line[3:] for line in status.splitlines()]
        git = {
            "commit": commit.strip(),
            "clean": None if changed is None else not changed,
            "changed": None if changed is None else changed[:20],
        }
    return {
        "keras_relu": keras_relu.__version__,
        "git": git,
        "backend": keras.config.backend(),
        "libraries": {
            name: _installed(name)
            for name in ("keras", "jax", "jaxlib", "tensorflow", "torch", "numpy")
        },
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": list(sys.argv),
        "config": config,
    }


def write_result(path, result, config=None):
    """Writes a result's JSON atomically with its `provenance` (of `config`, default the
    result's own `config`): every result file of the examples is written by this."""
    config = result.get("config") if config is None else config
    write_json_atomically(path, {**result, "provenance": provenance(config)})


def describe_probe(size, seed=PROBE_SEED, source="training"):
    """How a probe was drawn, as results record it: a result drawn otherwise is not reused."""
    return f"stratified, seed {seed}, {size} {source} images"


def train_probe(x_train, y_train, size=None):
    """The dead-unit probe: `size` (default `PROBE_SIZE`) training images (all, if fewer),
    stratified by class, seed `PROBE_SEED`: the training set is stored class by class."""
    size = min(PROBE_SIZE if size is None else size, len(x_train))
    probe, _ = diagnostics.sample_probe(x_train, size, labels=y_train, seed=PROBE_SEED)
    return probe.astype("float32")


def train_arm(arm_name, seed, data, config, out_dir, verbose=None):
    """Trains one arm with one seed and writes its JSON; returns the JSON's content.

    Args:
        arm_name: A key of `model.ARMS`.
        seed: Seed of the initial weights, data order and augmentation.
        data: `((x_train, y_train), (x_test, y_test))`, uint8 images.
        config: `{"epochs", "batch_size", "peak_lr", "momentum", "weight_decay", ...}`,
            stored with the result; a result with another config is not reused.
        out_dir: The results folder.
        verbose: Keras progress output: 0 (none), 1 (a bar), 2 (a line per epoch) or
            None for a bar on a terminal and a line per epoch in a log file. The bar
            and lines show `CompactProgbarLogger.COMPACT_KEYS` only.
    """
    (x_train, y_train), (x_test, y_test) = data
    model = model_lib.build_model(arm_name, seed, input_shape=x_train.shape[1:])
    batches = AugmentedBatches(x_train, y_train, config["batch_size"], seed)
    optimizer = keras.optimizers.SGD(
        learning_rate=OneCycle(config["peak_lr"], config["epochs"] * len(batches)),
        momentum=config["momentum"],
        nesterov=True,
        weight_decay=config["weight_decay"],
    )
    optimizer.exclude_from_weight_decay(var_names=["alpha"])  # PReLU's slopes (He et al.).
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    probe = train_probe(x_train, y_train)
    monitor = diagnostics.DeadUnitMonitor(probe, warn_above=None)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    log_path = Path(out_dir) / "logs" / f"{arm_name}_seed{seed}.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    csv_logger = keras.callbacks.CSVLogger(str(log_path))
    started = time.perf_counter()
    try:
        history = model.fit(
            batches,
            epochs=config["epochs"],
            validation_data=(x_test.astype("float32"), y_test),
            validation_batch_size=256,
            # In this order: the last two read what the first two add to each epoch's logs.
            callbacks=[EpochTimer(), monitor, csv_logger, CompactProgbarLogger()],
            verbose=verbose,
        )
    finally:  # A fit stopped by Ctrl-C never ends training, where Keras closes the log.
        if getattr(csv_logger, "csv_file", None) is not None:
            csv_logger.csv_file.close()
    train_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(
        x_test.astype("float32"), y_test, batch_size=256, verbose=0
    )
    layers = diagnostics.activation_stats(model, probe)
    result = {
        "arm": arm_name,
        "seed": seed,
        "config": config,
        "params": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
        "multiply_adds": model_lib.multiply_adds(model),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_seconds": train_seconds,
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "activation_layers": layers,
        "probe": describe_probe(len(probe)),
        "command": " ".join(sys.argv),
        "backend": keras.config.backend(),
        "keras": keras.__version__,
        "backend_version": backend_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    _keep_if_best(model, result, out_dir)
    write_result(run_path(out_dir, arm_name, seed), result)
    return result


def _keep_if_best(model, result, out_dir):
    """Saves the model as `models/<arm>.keras` if no finished seed of the arm beat it."""
    arm = result["arm"]
    others = [
        json.loads(path.read_text())["test_accuracy"]
        for path in (Path(out_dir) / "runs").glob(f"{arm}_seed*.json")
        if path != run_path(out_dir, arm, result["seed"])
    ]
    if others and max(others) >= result["test_accuracy"]:
        return
    folder = Path(out_dir) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    # An uncompiled copy sharing the weights: no optimizer state, no custom schedule.
    inference_model = keras.Model(model.inputs, model.outputs, name=model.name)
    partial = folder / f"{arm}.partial.keras"
    inference_model.save(partial)
    os.replace(partial, folder / f"{arm}.keras")
