"""Dead units, sparsity and saturation of a model's activation layers.

A unit (a channel of a convolution: one index of the last axis) is dead on some
data when its output is exactly 0 for every example and every position in it. A
dead ReLU unit also gets zero gradient, so it stops learning: the "dying ReLU"
problem. Variants with a non-zero negative side (Leaky ReLU, PReLU, RReLU, ELU,
SELU, GELU, Swish) almost never output an exact 0, so their dead fraction is about
0; that they keep a gradient there is their point. (In float32 GELU does output 0
below about -13 and Swish below about -88, where their gradient vanishes too.)

To compare variants fairly, the inactive fraction looks at the activation's input
instead: a unit whose input x is <= 0 for every example and position is stuck on
the negative side, whatever the variant does there. For a ReLU it is the dead
fraction; for Leaky ReLU or ELU it counts the units that would be dead under a ReLU.

```
dead_fraction       = (units with y == 0 everywhere) / units
inactive_fraction   = (units with x <= 0 everywhere) / units
sparsity            = (outputs with y == 0) / outputs
saturated_fraction  = (outputs with y >= cap) / outputs      (ReLU6: cap = 6)
```

x is the activation layer's input or, for an inline activation
(`Dense(64, activation="relu")`), the layer's pre-activation. CReLU's units are
relu(x) and relu(-x), so its inputs are counted as concat(x, -x).

Activation layers are the layers of every `keras_relu.VARIANTS` class, Keras's
`ReLU`, `LeakyReLU`, `PReLU`, `ELU` and `Activation`, and any other layer with a
non-linear `activation` (`Dense(64, activation="relu")`); recurrent layers are
left out, as their output is not their activation's output. The statistics are
taken in inference mode (`training=False`): BatchNorm uses its moving averages,
RReLU its mean slope.

Every use of a layer is measured: a layer (or nested model) called k times is
reported k times, as `name`, `name@1`, ..., `name@{k-1}` in the order the model
runs them (Keras numbers a layer's calls, its nodes, the same way). So a ReLU layer
shared by two branches gives "re_lu" and "re_lu@1", and the layers of a nested
model called twice give "block/re_lu" and "block@1/re_lu".
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_relu import activations
from keras_relu import layers
from keras_relu import registry

_ACTIVATION_LAYER_TYPES = tuple(v.layer for v in registry.VARIANTS) + (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Activation,
)
_RELU6_FUNCTIONS = (activations.relu6, keras.activations.relu6)


class DeadUnitWarning(UserWarning):
    """A layer's dead-unit fraction went past `DeadUnitMonitor(warn_above=...)`."""


def is_activation_layer(layer):
    """Whether `activation_stats` measures `layer` (see the module docstring)."""
    if isinstance(layer, keras.layers.RNN):
        return False
    activation = getattr(layer, "activation", None)
    if isinstance(layer, keras.layers.Activation) or activation is not None:
        return callable(activation) and activation is not keras.activations.linear
    return isinstance(layer, _ACTIVATION_LAYER_TYPES)


def _saturation_cap(layer):
    """The value a ReLU6-like layer saturates at, or None for other layers."""
    if isinstance(layer, layers.ReLU6) or getattr(layer, "activation", None) in _RELU6_FUNCTIONS:
        return 6.0
    if isinstance(layer, (layers.ReLU, keras.layers.ReLU)) and layer.max_value is not None:
        return float(layer.max_value)
    return None


def _is_crelu(layer):
    """Whether `layer` applies CReLU, as a layer or inline, and along which axis."""
    if isinstance(layer, layers.CReLU):
        return True, layer.axis
    activation = getattr(layer, "activation", None)
    return activation in (activations.crelu,), -1


class _PreActivation(keras.layers.Layer):
    """The input of `layer`'s inline activation: `layer` without it, on `layer`'s weights.

    The pre-activation of `Dense(64, activation="relu")` is not a tensor of the
    graph. Rather than switch the user's layer to a linear activation while probing
    (a mutation, visible to other threads and to be undone on every error), this runs
    a linear twin: the same class and config with `activation=None`, whose variables
    are mapped onto the user layer's own for the call (`keras.StatelessScope`, what
    `Layer.stateless_call` uses), so it always computes with the current weights.
    The twin's own variables are created once and never read.
    """

    def __init__(self, layer, input_shape):
        super().__init__(name=f"{layer.name}_pre_activation", dtype=layer.dtype_policy)
        self._source_variables = list(layer.variables)
        config = {**layer.get_config(), "activation": None, "name": self.name}
        self._twin = type(layer).from_config(config)
        self._twin.build(input_shape)
        shapes = [tuple(v.shape) for v in self._twin.variables]
        if shapes != [tuple(v.shape) for v in self._source_variables]:
            raise ValueError(f"{layer.name}: its linear twin has other variables ({shapes}).")

    @classmethod
    def of(cls, layer, inputs):
        """The twin for `layer` on `inputs`, or None for a layer that cannot be rebuilt."""
        try:
            return cls(layer, inputs.shape)
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            return None

    def call(self, *args, **kwargs):
        with keras.StatelessScope(
            state_mapping=list(zip(self._twin.variables, self._source_variables, strict=True))
        ):
            return self._twin.call(*args, **kwargs)


class _Probe:
    """One model that returns every activation use's input and output, keyed by path.

    The model's graph is replayed through the same layer objects (shared weights)
    so each activation layer's output becomes reachable from the model's inputs;
    nested models are entered, and their layers are named "outer/inner". A layer's
    second and later calls are named "layer@1", "layer@2"... (module docstring).
    """

    def __init__(self, model):
        try:
            # A Sequential model's `input` may be where it was last called; use its own.
            inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
        except (AttributeError, ValueError):
            raise ValueError(
                "activation_stats needs a Functional or Sequential model with known inputs: "
                "give it a `keras.Input` or call it on data first (subclassed models have "
                f"no graph to probe). Received: {model!r}"
            ) from None
        self.outputs = {}
        self.inputs = {}
        self.caps = {}
        self._prefix = []
        self._uses = {}
        self._replay(model, inputs)
        if not self.outputs:
            raise ValueError(f"Model {model.name!r} has no activation layers to probe.")
        self.model = keras.Model(
            inputs, [self.outputs, self.inputs], name=f"{model.name}_activation_probe"
        )

    def _replay(self, model, inputs):
        if isinstance(model, keras.Sequential):
            for layer in model.layers:
                inputs = self._call(layer, inputs)
            return inputs
        # clone_model with an identity clone_function re-calls the same layers,
        # sending each call through `_call`. Its returned model is not needed.
        keras.models.clone_model(
            model,
            input_tensors=inputs,
            clone_function=lambda layer: layer,
            call_function=self._call,
        )
        return None

    def _use_name(self, layer):
        """`prefix/name` for the first call of `layer` here, then `prefix/name@1`..."""
        path = "/".join([*self._prefix, layer.name])
        count = self._uses.get(path, 0)
        self._uses[path] = count + 1
        return layer.name if count == 0 else f"{layer.name}@{count}"

    def _call(self, layer, *args, **kwargs):
        if isinstance(layer, keras.Model):
            self._prefix.append(self._use_name(layer))
            try:
                outputs = self._replay(layer, args[0])
            finally:
                self._prefix.pop()
            if outputs is not None:
                return outputs
            # A nested functional model's replayed outputs are not returned by
            # clone_model, so what follows it runs on the whole nested model.
        outputs = layer(*args, **kwargs)
        if is_activation_layer(layer):
            path = "/".join([*self._prefix, self._use_name(layer)])
            self.outputs[path] = outputs
            activation_input = self._activation_input(layer, args, kwargs)
            if activation_input is not None:
                self.inputs[path] = activation_input
            self.caps[path] = _saturation_cap(layer)
        return outputs

    @staticmethod
    def _activation_input(layer, args, kwargs):
        """The tensor `layer`'s activation is applied to, or None where unknown."""
        if isinstance(layer, _ACTIVATION_LAYER_TYPES):
            inputs = args[0]
        else:
            twin = _PreActivation.of(layer, args[0])
            if twin is None:
                return None
            inputs = twin(*args, **kwargs)
        crelu, axis = _is_crelu(layer)
        if crelu:
            inputs = ops.concatenate([inputs, ops.negative(inputs)], axis=axis)
        return inputs

    def stats(self, data, batch_size=256):
        totals = {path: _Totals(self.caps[path]) for path in self.outputs}
        for batch in _input_batches(data, batch_size):
            outputs, inputs = self.model(batch, training=False)
            for path, y in outputs.items():
                totals[path].add(y, inputs.get(path))
        return {path: total.result() for path, total in totals.items()}


class _Totals:
    """Per-unit "ever non-zero" and "ever positive input" flags, zero/saturated counts."""

    def __init__(self, cap):
        self.cap = cap
        self.fired = self.positive = None
        self.outputs = self.zeros = self.saturated = 0

    def add(self, y, x=None):
        self.fired = _any_over_positions(ops.not_equal(y, 0), self.fired)
        if x is not None:
            self.positive = _any_over_positions(ops.greater(x, 0), self.positive)
        size = int(np.prod(y.shape))
        self.outputs += size
        # Sums of int32 masks: ops.count_nonzero warns on the torch backend.
        self.zeros += int(ops.convert_to_numpy(ops.sum(ops.cast(ops.equal(y, 0), "int32"))))
        if self.cap is not None:
            saturated = ops.sum(ops.cast(ops.greater_equal(y, self.cap), "int32"))
            self.saturated += int(ops.convert_to_numpy(saturated))

    def result(self):
        result = {"units": int(self.fired.size), "dead_fraction": float(1.0 - self.fired.mean())}
        if self.positive is not None:
            result["inactive_fraction"] = float(1.0 - self.positive.mean())
        result["sparsity"] = self.zeros / self.outputs
        if self.cap is not None:
            result["saturated_fraction"] = self.saturated / self.outputs
        return result


def _any_over_positions(mask, previous):
    """`mask` reduced to one flag per unit (last axis), or-ed into `previous`."""
    flags = ops.convert_to_numpy(ops.any(mask, axis=tuple(range(len(mask.shape) - 1))))
    return flags if previous is None else previous | flags


def _input_batches(data, batch_size):
    """Yields the model inputs of `data`: one batch of arrays, or an iterable of batches."""
    if isinstance(data, tuple):
        data = keras.utils.unpack_x_y_sample_weight(data)[0]
    leaves = keras.tree.flatten(data)
    if leaves and all(hasattr(leaf, "shape") for leaf in leaves):
        count = leaves[0].shape[0]
        for start in range(0, count, batch_size):
            yield keras.tree.map_structure(lambda a, s=start: a[s : s + batch_size], data)
        return
    for batch in data:  # tf.data.Dataset, a generator, a DataLoader...
        if isinstance(batch, tuple):
            batch = keras.utils.unpack_x_y_sample_weight(batch)[0]
        yield batch


def activation_stats(model, data, batch_size=256):
    """Dead and inactive units, sparsity and saturation of each activation layer.

    For each use of each activation layer (see the module docstring), on `data`, in
    inference mode, with x the activation's input and y its output:
    ```
    dead_fraction       = (units with y == 0 for every example and position) / units
    inactive_fraction   = (units with x <= 0 for every example and position) / units
    sparsity            = (outputs with y == 0) / outputs
    saturated_fraction  = (outputs with y >= cap) / outputs     (only ReLU6-like layers)
    ```
    A unit is one index of the last axis (a channel of a channels-last convolution).
    A ReLU's inactive fraction is its dead fraction; a Leaky ReLU's counts the units
    a ReLU would have lost. The model runs once per batch: one probe model returns
    every activation's input and output.

    Args:
        model: A built Functional or Sequential model; nested models are entered.
        data: A batch of inputs (an array, tensor, list or dict of them), an
            `(x, y)` or `(x, y, sample_weight)` tuple, or an iterable of such
            batches (a `tf.data.Dataset`, a generator). Labels are ignored.
        batch_size: Batch size for an in-memory `data`. Default: 256.

    Returns:
        `{layer_path: {"units", "dead_fraction", "inactive_fraction", "sparsity"[,
        "saturated_fraction"]}}` in graph order. Layers of nested models are named
        "nested_model/layer"; a layer's second and later calls "layer@1", "layer@2"...
        `inactive_fraction` is left out for an inline activation of a custom layer
        that cannot be rebuilt from its config with `activation=None`.

    Example:
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras_relu.ReLU()])
    >>> keras_relu.diagnostics.activation_stats(model, np.random.randn(32, 8))
    {'re_lu': {'units': 4, 'dead_fraction': 0.0, 'inactive_fraction': 0.0, 'sparsity': 0.49...}}
    """
    return _Probe(model).stats(data, batch_size)


def summarize(stats):
    """Overall figures of `activation_stats`: dead and inactive units over all units.

    Args:
        stats: What `activation_stats` returned.

    Returns:
        `{"dead_fraction": ..., "inactive_fraction": ..., "sparsity": ...}`: the
        dead and inactive fractions weight each layer by its units (the inactive one
        over the layers that report it); the sparsity is the mean over layers.
    """
    summary = {"dead_fraction": _unit_weighted(stats.values(), "dead_fraction")}
    measured = [s for s in stats.values() if "inactive_fraction" in s]
    if measured:
        summary["inactive_fraction"] = _unit_weighted(measured, "inactive_fraction")
    summary["sparsity"] = sum(s["sparsity"] for s in stats.values()) / len(stats)
    return summary


def _unit_weighted(layer_stats, key):
    layer_stats = list(layer_stats)
    units = sum(s["units"] for s in layer_stats)
    return sum(s[key] * s["units"] for s in layer_stats) / units


class DeadUnitMonitor(keras.callbacks.Callback):
    """Records `activation_stats` on a fixed probe batch at the end of each epoch.

    The figures are added to the epoch's `logs`, so they reach `History`,
    `CSVLogger` and `TensorBoard` (list this callback before those two):
    ```
    dead_fraction, inactive_fraction, sparsity    summarize(stats)
    dead_fraction/<layer>, inactive_fraction/<layer>, sparsity/<layer>
                                                  per activation layer (and use)
    saturated_fraction/<layer>                    ReLU6-like layers only
    ```
    A `DeadUnitWarning` is issued when a layer's dead fraction exceeds `warn_above`.

    Args:
        probe_batch: The inputs to measure on, as `activation_stats` takes them,
            for example a few hundred held-out images.
        warn_above: Warn when a layer's dead fraction is above this, or None to
            never warn. Default: 0.2 (reports put 20-40% of units dead in some networks).
        batch_size: Batch size for the probe. Default: 256.

    Example:
    >>> monitor = keras_relu.diagnostics.DeadUnitMonitor(x_val[:512])
    >>> history = model.fit(x, y, epochs=5, callbacks=[monitor])
    >>> history.history["dead_fraction"]  # one value per epoch
    """

    def __init__(self, probe_batch, warn_above=0.2, batch_size=256):
        super().__init__()
        if warn_above is not None and not 0 <= warn_above <= 1:
            raise ValueError(f"`warn_above` must be in [0, 1] or None. Received: {warn_above!r}")
        self.probe_batch = probe_batch
        self.warn_above = warn_above
        self.batch_size = batch_size
        self._probe = None

    def on_train_begin(self, logs=None):
        self._probe = _Probe(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self._probe is None:
            self._probe = _Probe(self.model)
        stats = self._probe.stats(self.probe_batch, self.batch_size)
        figures = dict(summarize(stats))
        for path, layer_stats in stats.items():
            for key in ("dead_fraction", "inactive_fraction", "sparsity", "saturated_fraction"):
                if key in layer_stats:
                    figures[f"{key}/{path}"] = layer_stats[key]
        if logs is not None:
            logs.update(figures)
        if self.warn_above is not None:
            dying = {p: s["dead_fraction"] for p, s in stats.items()}
            dying = {p: f for p, f in dying.items() if f > self.warn_above}
            if dying:
                listed = ", ".join(f"{p} {f:.0%}" for p, f in dying.items())
                warnings.warn(
                    f"Epoch {epoch + 1}: dead units above {self.warn_above:.0%} in {listed}.",
                    DeadUnitWarning,
                    stacklevel=2,
                )


__all__ = [
    "DeadUnitMonitor",
    "DeadUnitWarning",
    "activation_stats",
    "is_activation_layer",
    "summarize",
]
