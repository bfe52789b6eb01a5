"""Trained to death: a plain MLP (no BatchNorm) on CIFAR-10, learning rates up to too high.

```
pixels -> normalize -> flatten -> 3 x [Dense(256, He normal) -> activation] -> Dense(10)
SGD, momentum 0.9, constant learning rate, batch 128
```
Per epoch (and before the first), on a fixed probe of training images (stratified by
class, seeded: `probe`):
`DeadUnitMonitor`'s dead and inactive fractions per layer (with its `DeadUnitWarning`s
recorded), test accuracy, and which units are inactive, so the report can say whether
units that stopped come back.
"""

import json
import time
import warnings

import keras
import numpy as np
from cifar10.train import describe_probe
from cifar10.train import train_probe

import keras_relu
from keras_relu import diagnostics

HIDDEN = (256, 256, 256)
WARN_ABOVE = 0.2  # DeadUnitMonitor's default: "20-40% dead" is what the articles report.


def build_mlp(
    variant,
    seed,
    input_shape=(32, 32, 3),
    hidden=HIDDEN,
    mean=0.0,
    std=1.0,
    initial_bias=0.0,
    make_activation=None,
):
    """The MLP with `variant` (a registry name) after each hidden Dense; uncompiled.

    The seed fixes the Dense layers' initial weights, the same for every variant.
    `initial_bias` starts every hidden bias there (-3: the "large negative bias" cause).
    `make_activation(name)`, if given, makes each activation layer instead of the
    registry (a benchmark's Keras counterparts); `variant` then only names the model.
    """
    keras.utils.set_random_seed(seed)
    dense = [
        keras.layers.Dense(
            units,
            kernel_initializer="he_normal",
            bias_initializer=keras.initializers.Constant(initial_bias),
            name=f"dense{index}",
        )
        for index, units in enumerate(hidden, start=1)
    ]
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Normalization(mean=mean, variance=np.square(std))(inputs)
    x = keras.layers.Flatten()(x)
    for index, layer in enumerate(dense, start=1):
        if make_activation is not None:
            activation = make_activation(f"act{index}")
        else:
            kwargs = {"seed": seed} if variant == "rrelu" else {}
            activation = keras_relu.get(variant, name=f"act{index}", **kwargs)
        x = activation(layer(x))
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"mlp_{variant}")


def probe(data, config):
    """The dead-unit probe: `config["probe_images"]` training images, stratified by class,
    the same for every variant, seed and cure (the CIFAR-10 example's `train_probe`)."""
    (x_train, y_train), _ = data
    return train_probe(x_train, y_train, config["probe_images"])


def protocol(config):
    """How `train_run` measures, for the stored config: a result measured otherwise is rerun."""
    size = min(config["probe_images"], config["train_images"])
    return {"probe": describe_probe(size)}


def warmup_cosine(learning_rate, total_steps):
    """The warm-up and cosine decay remedy, sized to a run of `total_steps` (>= 1) steps.

    ```
    lr(step) = learning_rate * step / warmup                               step < warmup
             = learning_rate * (1 + cos(pi * (step - warmup) / decay)) / 2  otherwise
    warmup = max(1, total_steps // 4)      (one epoch of the study's four)
    decay = max(1, total_steps - warmup)
    ```
    A run of one epoch, or one step, gets both phases too (Keras refuses a decay of 0 steps).
    """
    warmup = max(1, total_steps // 4)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


def _optimizer(name, learning_rate, momentum):
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise ValueError(f"`optimizer` must be 'adam' or 'sgd'. Received: optimizer={name!r}")


class InactiveUnits(keras.callbacks.Callback):
    """Records, before training and after each epoch, the indices of each hidden layer's
    inactive units (input to the activation <= 0 on every probe image)."""

    def __init__(self, probe):
        super().__init__()
        self.probe = probe
        self.epochs = []
        self._layers = self._features = None

    def _record(self):
        outputs = self._features(self.probe, training=False)
        self.epochs.append(
            {
                layer.name: np.flatnonzero(
                    np.all(keras.ops.convert_to_numpy(values) <= 0, axis=0)
                ).tolist()
                for layer, values in zip(self._layers, outputs, strict=True)
            }
        )

    def on_train_begin(self, logs=None):
        self._layers = [layer for layer in self.model.layers if layer.name.startswith("dense")]
        self._features = keras.Model(self.model.input, [layer.output for layer in self._layers])
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()


def revivals(inactive_by_epoch):
    """Units inactive after some epoch and active at the end, and units ever inactive."""
    final = inactive_by_epoch[-1]
    revived = ever = 0
    for layer, stuck_at_end in final.items():
        seen = set().union(*(set(epoch[layer]) for epoch in inactive_by_epoch[1:]))
        ever += len(seen)
        revived += len(seen - set(stuck_at_end))
    return {"ever_inactive_units": ever, "revived_units": revived}


def train_run(
    variant,
    learning_rate,
    seed,
    data,
    config,
    verbose=0,
    transform=None,
    optimizer=None,
    callbacks=(),
):
    """Trains one (variant, learning rate, seed); returns the result to store.

    Args:
        variant: A registry name.
        learning_rate: SGD's constant learning rate.
        seed: Initial weights and batch order.
        data: `((x_train, y_train), (x_test, y_test))`, uint8 images.
        config: `{"epochs", "batch_size", "optimizer" ("adam" or "sgd"), "momentum" (SGD's),
            "probe_images"[, "initial_bias"]}`, stored with the result.
        verbose: Keras's `fit` verbosity. Default: 0.
        transform: A function applied to the built MLP, returning the model to train
            (the cures: a new initialization, swapped activations). Default: None.
        optimizer: An optimizer to use instead of config's. Default: None.
        callbacks: More callbacks, after the monitors (which so measure what training
            left, before a callback changes it). Default: ().
    """
    (x_train, y_train), (x_test, y_test) = data
    pixels = x_train.reshape(-1, x_train.shape[-1]).astype("float64")
    model = build_mlp(
        variant,
        seed,
        x_train.shape[1:],
        mean=pixels.mean(axis=0),
        std=pixels.std(axis=0),
        initial_bias=config.get("initial_bias", 0.0),
    )
    if transform is not None:
        model = transform(model)
    model.compile(
        optimizer=optimizer or _optimizer(config["optimizer"], learning_rate, config["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    probe_images = probe(data, config)
    start = diagnostics.summarize(diagnostics.activation_stats(model, probe_images))
    monitor = diagnostics.DeadUnitMonitor(probe_images, warn_above=WARN_ABOVE)
    inactive = InactiveUnits(probe_images)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", diagnostics.DeadUnitWarning)
        history = model.fit(
            x_train.astype("float32"),
            y_train,
            batch_size=config["batch_size"],
            epochs=config["epochs"],
            validation_data=(x_test.astype("float32"), y_test),
            callbacks=[monitor, inactive, *callbacks, keras.callbacks.TerminateOnNaN()],
            verbose=verbose,
        )
    dead_unit_warnings = [
        str(w.message) for w in caught if issubclass(w.category, diagnostics.DeadUnitWarning)
    ]
    for w in caught:  # Anything else is not ours to swallow.
        if not issubclass(w.category, diagnostics.DeadUnitWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    curves = {key: [float(v) for v in values] for key, values in history.history.items()}
    losses = curves.get("loss", [])
    return {
        "variant": variant,
        "learning_rate": learning_rate,
        "seed": seed,
        "config": config,
        "at_start": start,
        "history": curves,
        "diverged": bool(losses and not np.isfinite(losses[-1])) or len(losses) < config["epochs"],
        "test_accuracy": curves["val_accuracy"][-1] if "val_accuracy" in curves else 0.1,
        "dead_unit_warnings": dead_unit_warnings,
        "inactive_units_by_epoch": inactive.epochs,
        **revivals(inactive.epochs),
        "train_seconds": time.perf_counter() - started,
        "backend": keras.config.backend(),
        "keras": keras.__version__,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def dumps(result):
    return json.dumps(result, indent=1)
