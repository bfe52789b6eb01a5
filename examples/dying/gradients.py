"""Watching the gradients: `GradientMonitor` every few batches on the trained-to-death MLP.

The `trained` part's MLP (no BatchNorm), Adam at learning rates 1e-3 to 3e-2, for
ReLU, Leaky ReLU and PReLU. Every `every` batches (and before the first):
- `GradientMonitor`'s figures: the global and per-layer gradient norm of the loss
  on a fixed batch of training images, and each layer's update ratio over the
  last step, with the `GradientWarning`s it issues at its defaults;
- the dead fraction per layer on the `trained` part's probe (what `DeadUnitMonitor`
  measures: the step at which it would warn, were it run every few batches);
- the accuracy on a fixed set of held-out images (when it collapses).
`DeadUnitMonitor` also runs at the end of each epoch, as in `trained`, with its warnings.
"""

import re
import time
import warnings

import keras
import numpy as np

from keras_relu import diagnostics

from .trained import WARN_ABOVE
from .trained import _optimizer
from .trained import build_mlp

VARIANTS = ("relu", "leaky_relu", "prelu")


class EveryFewBatches(keras.callbacks.Callback):
    """Dead fraction per layer and held-out accuracy, before training and every `every`
    batches; `records` is a list of `{"step", "dead_fraction", "dead_fraction/<layer>",
    "accuracy"}`."""

    def __init__(self, every, dead_probe, accuracy_probe):
        super().__init__()
        self.every = every
        self.accuracy_probe = accuracy_probe
        self.records = []
        self._step = 0
        # Its probe model is built once, at train begin: activation_stats would rebuild it.
        self._dead = diagnostics.DeadUnitMonitor(dead_probe, warn_above=None)

    def _record(self):
        model = self.model  # On JAX, reading `self.model` puts fit's state into the model.
        figures = {}
        self._dead.on_epoch_end(0, figures)
        record = {"step": self._step}
        record.update({k: v for k, v in figures.items() if k.split("/")[0] != "sparsity"})
        images, labels = self.accuracy_probe
        logits = keras.ops.convert_to_numpy(model(images, training=False))
        record["accuracy"] = float(np.mean(np.argmax(logits, axis=-1) == labels))
        self.records.append(record)

    def on_train_begin(self, logs=None):
        self._dead.set_model(self.model)
        self._dead.on_train_begin()
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every == 0:
            self._record()


def _step_of(message):
    found = re.search(r"step (\d+)", message)
    return int(found.group(1)) if found else None


def gradient_run(variant, learning_rate, seed, data, config):
    """Trains one (variant, learning rate, seed) with the monitors; returns the result.

    Args:
        variant: A registry name.
        learning_rate: The optimizer's constant learning rate.
        seed: Initial weights and batch order.
        data: `((x_train, y_train), (x_test, y_test))`, uint8 images.
        config: `{"epochs", "batch_size", "optimizer", "momentum", "probe_images",
            "gradient_probe_images", "accuracy_images", "every"}`, stored with the result.
    """
    (x_train, y_train), (x_test, y_test) = data
    pixels = x_train.reshape(-1, x_train.shape[-1]).astype("float64")
    model = build_mlp(
        variant, seed, x_train.shape[1:], mean=pixels.mean(axis=0), std=pixels.std(axis=0)
    )
    model.compile(
        optimizer=_optimizer(config["optimizer"], learning_rate, config["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    count = config["gradient_probe_images"]
    gradient_probe = (x_train[:count].astype("float32"), y_train[:count])
    dead_probe = x_train[: config["probe_images"]].astype("float32")
    count = config["accuracy_images"]
    accuracy_probe = (x_test[:count].astype("float32"), y_test[:count])
    gradients = diagnostics.GradientMonitor(gradient_probe, every=config["every"])
    dead_every = EveryFewBatches(config["every"], dead_probe, accuracy_probe)
    dead_epochs = diagnostics.DeadUnitMonitor(dead_probe, warn_above=WARN_ABOVE)
    ours = (diagnostics.GradientWarning, diagnostics.DeadUnitWarning)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", diagnostics.GradientWarning)
        warnings.simplefilter("always", diagnostics.DeadUnitWarning)
        history = model.fit(
            x_train.astype("float32"),
            y_train,
            batch_size=config["batch_size"],
            epochs=config["epochs"],
            validation_data=(x_test.astype("float32"), y_test),
            callbacks=[gradients, dead_every, dead_epochs, keras.callbacks.TerminateOnNaN()],
            verbose=0,
        )
    for w in caught:  # Anything else is not ours to swallow.
        if not issubclass(w.category, ours):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    gradient_warnings = [
        {"step": _step_of(str(w.message)), "message": str(w.message)}
        for w in caught
        if issubclass(w.category, diagnostics.GradientWarning)
    ]
    curves = {key: [float(v) for v in values] for key, values in history.history.items()}
    return {
        "variant": variant,
        "learning_rate": learning_rate,
        "seed": seed,
        "config": config,
        "steps_per_epoch": int(np.ceil(len(x_train) / config["batch_size"])),
        "gradients": gradients.history,
        "every_few_batches": dead_every.records,
        "gradient_warnings": gradient_warnings,
        "dead_unit_warnings": [
            str(w.message) for w in caught if issubclass(w.category, diagnostics.DeadUnitWarning)
        ],
        "history": curves,
        "test_accuracy": curves["val_accuracy"][-1] if "val_accuracy" in curves else 0.1,
        "train_seconds": time.perf_counter() - started,
        "backend": keras.config.backend(),
        "keras": keras.__version__,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
