"""Cures for the trained-to-death ReLU: the MLP and protocol of `trained.py`, one cure per arm.

```
relu        plain ReLU (the baseline, rerun here for the time ratio)
revive      + keras_relu.diagnostics.ReviveDeadUnits (threshold 0, every REVIVE_EVERY batches,
              scored on REVIVE_PROBE training images, stratified by class)
revive_keep_state   the same with reset_optimizer=False: Adam's moments of the revived
              entries are kept (zeroed moments with Adam's global step count give them
              steps of several times the learning rate for tens of steps)
clipnorm    + Adam(clipnorm=CLIPNORM), chosen from the gradient norms (`gradient_norms`)
schedule    + warm-up over the first quarter of the steps (one epoch of four) to the learning
              rate, then cosine decay to 0 (`trained.warmup_cosine`)
rai         + hidden kernels from keras_relu.initializers.RandomizedAsymmetric (Lu et al. 2019)
leaky_relu  ReLU model with keras_relu.swap_activations(model, "relu", "leaky_relu")
prelu       ReLU model with keras_relu.swap_activations(model, "relu", "prelu")
```
Every arm starts from the ReLU MLP built with the same seed (RAI re-draws its hidden kernels),
trains with Adam at one learning rate, and is measured as `trained.train_run` measures: dead
and inactive fractions per epoch (`DeadUnitMonitor`, before any revival in that epoch), test
accuracy, training time.
"""

import keras
import numpy as np

import keras_relu
from keras_relu import diagnostics

from . import trained

ARMS = ("relu", "revive", "revive_keep_state", "clipnorm", "schedule", "rai", "leaky_relu", "prelu")
REVIVE_EVERY = 40  # Batches: about twice per epoch (79 batches of 128 in 10,000 images).
REVIVE_PROBE = 256  # ReDo's batch size for scoring.
REVIVE_PROBE_SEED = 0  # One probe for every seed and rate: the revive arms are paired.
# Held-out test images on which each revival's change of the logits is measured (the
# outputs are kept only on the probe: units dead there may be alive on other images).
HELD_OUT_IMAGES = 256
# `clipnorm` (Keras clips each variable's gradient to it) is not a constant: `choose_clipnorm`
# takes the median per-variable gradient norm of plain ReLU over its first epoch at a rate
# where it trains well (1e-3), so typical gradients pass and a high rate's spikes are cut.


def _steps_per_epoch(config):
    return -(-config["train_images"] // config["batch_size"])


def cure_settings(arm, clipnorm, config):
    """What an arm changes, stored with its result (a result with others is not reused)."""
    settings = {"arm": arm}
    if arm in ("revive", "revive_keep_state"):
        settings.update(every_n_batches=REVIVE_EVERY, probe_images=REVIVE_PROBE, threshold=0.0)
        size = min(REVIVE_PROBE, config["train_images"])  # All of a tiny test set.
        settings["probe"] = trained.describe_probe(size, REVIVE_PROBE_SEED)
        if arm == "revive_keep_state":
            settings["reset_optimizer"] = False
    elif arm == "clipnorm":
        settings["clipnorm"] = clipnorm
    elif arm == "schedule":
        settings.update(warmup_epochs=config["epochs"] / 4, decay="cosine to 0")
    elif arm == "rai":
        settings["kernel_initializer"] = "randomized_asymmetric"
    return settings


def _rai_hidden(seed):
    """Re-draws the hidden Dense kernels (not the logits') with RAI, one seed per layer."""

    def transform(model):
        for index, layer in enumerate(model.layers):
            if layer.name.startswith("dense"):
                initializer = keras_relu.initializers.RandomizedAsymmetric(seed=seed * 100 + index)
                layer.kernel.assign(initializer(layer.kernel.shape, dtype=layer.kernel.dtype))
        return model

    return transform


def _swap(new):
    return lambda model: keras_relu.swap_activations(model, "relu", new)


class HeldOutShift(keras.callbacks.Callback):
    """Runs `reviver` and records how far each of its revivals moves the logits on
    fixed held-out images: `by_call`, `[{"max": max |delta logit|, "mean": ...}]`."""

    def __init__(self, reviver, held_out):
        super().__init__()
        self.reviver = reviver
        self.held_out = held_out
        self.by_call = []
        self._steps = 0

    def set_model(self, model):
        super().set_model(model)
        self.reviver.set_model(model)

    def on_train_begin(self, logs=None):
        self.reviver.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.reviver.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.reviver.on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self._steps % self.reviver.every_n_batches:
            self.reviver.on_train_batch_end(batch, logs)
            return
        model = self.model  # On JAX, syncs the training state into the variables first.
        before = keras.ops.convert_to_numpy(model(self.held_out, training=False))
        self.reviver.on_train_batch_end(batch, logs)
        shift = np.abs(keras.ops.convert_to_numpy(model(self.held_out, training=False)) - before)
        self.by_call.append({"max": float(shift.max()), "mean": float(shift.mean())})


def run_arm(arm, learning_rate, seed, data, config, clipnorm):
    """Trains one arm; returns `trained.train_run`'s result with `cure` and, for
    `revive`, `recycled_units` (units ReviveDeadUnits re-drew, over training) and
    `held_out_logit_shift` (how far each revival moved the logits on held-out images)."""
    settings = cure_settings(arm, clipnorm, config)
    kwargs = {}
    reviver = None
    if arm in ("revive", "revive_keep_state"):
        (x_train, y_train), _ = data
        size = min(REVIVE_PROBE, len(x_train))
        probe, _ = diagnostics.sample_probe(x_train, size, labels=y_train, seed=REVIVE_PROBE_SEED)
        reviver = diagnostics.ReviveDeadUnits(
            probe.astype("float32"),
            every_n_batches=REVIVE_EVERY,
            reset_optimizer=arm == "revive",
            seed=seed,
        )
        kwargs["callbacks"] = [reviver]
    elif arm == "clipnorm":
        kwargs["optimizer"] = keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    elif arm == "schedule":
        steps = _steps_per_epoch(config) * config["epochs"]
        kwargs["optimizer"] = keras.optimizers.Adam(trained.warmup_cosine(learning_rate, steps))
    elif arm == "rai":
        kwargs["transform"] = _rai_hidden(seed)
    elif arm in ("leaky_relu", "prelu"):
        kwargs["transform"] = _swap(arm)
    elif arm != "relu":
        raise ValueError(f"`arm` must be one of {ARMS}. Received: arm={arm!r}")
    shift = None
    if reviver is not None:
        x_test, y_test = data[1]
        images = min(HELD_OUT_IMAGES, len(x_test))  # A tiny test run has fewer.
        held_out, _ = diagnostics.sample_probe(x_test, images, labels=y_test, seed=0)
        shift = HeldOutShift(reviver, held_out.astype("float32"))
        kwargs["callbacks"] = [shift]
    result = trained.train_run("relu", learning_rate, seed, data, config, **kwargs)
    result["cure"] = settings
    if reviver is not None:
        result["recycled_units"] = sum(report.total for _, _, report in reviver.reports)
        result["recycled_by_call"] = [report.total for _, _, report in reviver.reports]
        result["revival_skipped"] = reviver.reports[-1][2].skipped if reviver.reports else {}
        result["held_out_logit_shift"] = {"images": images, "by_call": shift.by_call}
    return result


def gradient_norms(data, config, learning_rates, seed=0, epochs=1):
    """Per-variable gradient norms of plain ReLU while it trains (the norms `clipnorm`
    compares with), on the JAX backend: `{lr: {"steps": [[norm per variable]...]}}`."""
    import jax

    (x_train, y_train), _ = data
    pixels = x_train.reshape(-1, x_train.shape[-1]).astype("float64")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    result = {}
    for learning_rate in learning_rates:
        model = trained.build_mlp(
            "relu", seed, x_train.shape[1:], mean=pixels.mean(axis=0), std=pixels.std(axis=0)
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_fn)

        def loss(trainable, non_trainable, x, y, model=model):
            logits, _ = model.stateless_call(trainable, non_trainable, x)
            return loss_fn(y, logits)

        gradient = jax.jit(jax.grad(loss))
        order = np.random.default_rng(seed).permutation(len(x_train))
        norms = []
        for _ in range(epochs):
            for start in range(0, len(order), config["batch_size"]):
                index = order[start : start + config["batch_size"]]
                x, y = x_train[index].astype("float32"), y_train[index]
                grads = gradient(
                    [v.value for v in model.trainable_variables],
                    [v.value for v in model.non_trainable_variables],
                    x,
                    y,
                )
                norms.append([float(np.linalg.norm(np.asarray(g))) for g in grads])
                model.train_on_batch(x, y)
        result[learning_rate] = {
            "variables": [v.path for v in model.trainable_variables],
            "steps": norms,
        }
    return result


def choose_clipnorm(norms, healthy_learning_rate):
    """The median per-variable gradient norm at a learning rate where ReLU trains well,
    rounded to one significant digit."""
    steps = np.array(norms[healthy_learning_rate]["steps"])
    median = float(np.median(steps))
    return float(f"{median:.1g}")
