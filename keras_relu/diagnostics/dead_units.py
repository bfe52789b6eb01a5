"""Dead units, sparsity and saturation of a model's activations.

A unit (a channel of a convolution: one index of the channel axis, below) is dead
on some data when its output is exactly 0 for every example and every position in
it. A dead ReLU unit also gets zero gradient, so it stops learning: the "dying
ReLU" problem. Variants with a non-zero negative side (Leaky ReLU, PReLU, RReLU,
ELU, SELU, GELU, Swish) almost never output an exact 0, so their dead fraction is
about 0; that they keep a gradient there is their point. (In float32 GELU does
output 0 below about -13 and Swish below about -88, where their gradient vanishes
too.)

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

What is measured: the layers of every `keras_relu.VARIANTS` class, Keras's `ReLU`,
`LeakyReLU`, `PReLU`, `ELU` and `Activation`, any other layer with a non-linear
`activation` (`Dense(64, activation="relu")`), and the activation nodes of a
functional graph that `swap_activations` recognizes: `keras.ops.relu(x)` and its
kind, and `keras_relu.activations` calls on symbolic tensors. Recurrent layers and
cells are left out, as their output is not their activation's output. The
statistics are taken in inference mode (`training=False`): BatchNorm uses its
moving averages, RReLU its mean slope.

Channel axis: a unit is one index of its tensor's channel axis, found from the
layer that made the tensor: axis 1 after a layer with
`data_format="channels_first"`, the `axis` of a BatchNormalization,
GroupNormalization or CReLU, the last axis after any other layer that changes
the shape (Dense, Flatten, ...); layers that keep the shape (activations,
Dropout, Add, ...) pass on their input's axis. So a ReLU layer after a
channels-first convolution and its BatchNorm(axis=1) counts channels.

Masks: positions the Keras mask drops (`Embedding(mask_zero=True)`, `Masking`)
are left out of every figure. The mask is the one Keras propagates to the
measured tensor (or to the activation's input, for a `keras.ops` node); inside a
block, the block's input mask or its `padding_mask` argument.

Blocks and wrappers: activation layers inside another layer (keras-hub's
`TransformerEncoder`, a user's subclassed block, a subclassed model nested in a
functional one) are measured themselves, named `block/inner_layer`: the probe
runs the block a second time while recording what its inner activation layers
take and give. Inside a block the channel axis is the inner layer's own
(`data_format`, `axis`) or the last. `TimeDistributed(Dense(..., activation=...))`
is measured as `time_distributed/dense`. An activation layer inside a block that
the block does not call through `Layer.__call__` (it runs the layer's `call`
directly, or not in inference) cannot be reached: these are listed in one
`UnmeasuredActivationWarning` when the probe is built, never replaced by a
figure taken on the block's output. Activation functions a block applies in its
own code (`keras.ops.relu` inside a `call`) cannot be seen at all.

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

from keras_relu import _keras_integration
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
# Layers whose `axis` is their output's channel axis.
_CHANNEL_AXIS_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.GroupNormalization,
    layers.CReLU,
)
# Layers that keep their input's shape but compute along the last axis.
_LAST_AXIS_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense)


class DeadUnitWarning(UserWarning):
    """A layer's dead-unit fraction went past `DeadUnitMonitor(warn_above=...)`."""


class UnmeasuredActivationWarning(UserWarning):
    """Activations inside a block that `activation_stats` could not reach (named in it)."""


class NonFiniteProbeWarning(UserWarning):
    """The probe gave NaN or inf at some activations: `DeadUnitMonitor` logs their
    figures as NaN, `ReviveDeadUnits` leaves them alone at that call."""


def _is_recurrent(layer):
    # RNN layers, and their cells (which declare a `state_size`).
    return isinstance(layer, keras.layers.RNN) or hasattr(layer, "state_size")


def is_activation_layer(layer):
    """Whether `activation_stats` measures `layer`'s output (see the module docstring).

    A block (a layer with activation layers inside, such as keras-hub's
    `TransformerEncoder`) is not one: its inner activation layers are measured.
    """
    if not isinstance(layer, keras.layers.Layer) or _is_recurrent(layer):
        return False
    if _inner_activation_layers(layer, ""):
        return False
    activation = getattr(layer, "activation", None)
    if isinstance(layer, keras.layers.Activation) or activation is not None:
        return callable(activation) and activation is not keras.activations.linear
    return isinstance(layer, _ACTIVATION_LAYER_TYPES)


def _saturation_cap(layer):
    """The value a ReLU6-like layer or graph node saturates at, or None."""
    if isinstance(layer, activations.ActivationCall):
        if layer.function == "relu6":
            return 6.0
        max_value = layer.arguments.get("max_value") if layer.function == "relu" else None
        return None if max_value is None else float(max_value)
    if registry.operation_function_name(layer) == "relu6":
        return 6.0
    if isinstance(layer, layers.ReLU6) or getattr(layer, "activation", None) in _RELU6_FUNCTIONS:
        return 6.0
    if isinstance(layer, (layers.ReLU, keras.layers.ReLU)) and layer.max_value is not None:
        return float(layer.max_value)
    return None


def _crelu_axis(layer):
    """The axis `layer` applies CReLU along (as a layer, inline or as a graph node), or None."""
    if isinstance(layer, layers.CReLU):
        return layer.axis
    if isinstance(layer, activations.ActivationCall):
        return layer.arguments.get("axis", -1) if layer.function == "crelu" else None
    return -1 if getattr(layer, "activation", None) is activations.crelu else None


def _declared_channel_axis(layer):
    """The channel axis of `layer`'s output that `layer` states, or None."""
    data_format = getattr(layer, "data_format", None)
    if data_format in ("channels_first", "channels_last"):
        return 1 if data_format == "channels_first" else -1
    if isinstance(layer, _CHANNEL_AXIS_LAYERS) and isinstance(layer.axis, int):
        return layer.axis
    crelu_axis = _crelu_axis(layer)
    if isinstance(crelu_axis, int) and not isinstance(layer, keras.layers.Layer):
        return crelu_axis  # An ActivationCall node: its `axis` argument.
    return None


def _inner_activation_layers(block, prefix):
    """`{path: layer}` of the activation layers inside `block`, at any depth, named
    `prefix/child/grandchild`; recurrent layers and their cells are not entered."""
    found = {}
    for child in _keras_integration.sublayers(block, recursive=False):
        if _is_recurrent(child):
            continue
        path = f"{prefix}/{child.name}"
        inner = _inner_activation_layers(child, path)
        if inner:
            found.update(inner)  # A block in the block: its inner layers, not it.
        elif is_activation_layer(child):
            found[path] = child
    return found


def _unique_name(name):
    """`name` made unique among the probe's layers: a layer may be called several times."""
    return f"{name}_{keras.backend.get_uid(name)}"


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
        super().__init__(
            name=_unique_name(f"{layer.name}_pre_activation"), dtype=layer.dtype_policy
        )
        self._source_variables = list(layer.variables)
        config = {**layer.get_config(), "activation": None, "name": self.name}
        self._twin = type(layer).from_config(config)
        self._twin.build(input_shape)
        shapes = [tuple(v.shape) for v in self._twin.variables]
        if shapes != [tuple(v.shape) for v in self._source_variables]:
            raise ValueError(f"{layer.name}: its linear twin has other variables ({shapes}).")
        self.built = True  # Nothing of its own to build (TimeDistributed asks).
        self.supports_masking = True  # Its output keeps its input's mask.

    @classmethod
    def of(cls, layer, input_shape):
        """The twin for `layer` on inputs of `input_shape`, or None where it cannot be
        rebuilt (or its input shape is unknown)."""
        if input_shape is None:
            return None
        try:
            return cls(layer, input_shape)
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            return None

    def compute_output_shape(self, input_shape):
        return self._twin.compute_output_shape(input_shape)

    def compute_output_spec(self, *args, **kwargs):
        return self._twin.compute_output_spec(*args, **kwargs)

    def call(self, *args, **kwargs):
        with keras.StatelessScope(
            state_mapping=list(zip(self._twin.variables, self._source_variables, strict=True))
        ):
            return self._twin.call(*args, **kwargs)


def _with_crelu_input(layer, inputs, time_axis=False):
    """CReLU's units are relu(x) and relu(-x): its input counts as concat(x, -x).

    `time_axis`: `inputs` has a time axis at 1 that `layer` does not see (TimeDistributed).
    """
    axis = _crelu_axis(layer)
    if axis is None or inputs is None:
        return inputs
    axis = axis + 1 if time_axis and axis >= 0 else axis
    return ops.concatenate([inputs, ops.negative(inputs)], axis=axis)


def _pre_activation(layer, args, kwargs, input_shape, wrap=None):
    """The tensor `layer`'s activation is applied to, or None where unknown.

    `wrap` puts the linear twin of an inline activation in the layer's place (a
    TimeDistributed around it); `input_shape` is the shape the twin is built for.
    """
    time_axis = wrap is not None
    if isinstance(layer, _ACTIVATION_LAYER_TYPES):
        return _with_crelu_input(layer, args[0], time_axis)
    twin = _PreActivation.of(layer, input_shape)
    if twin is None:
        return None
    inputs = (twin if wrap is None else wrap(twin))(*args, **kwargs)
    return _with_crelu_input(layer, inputs, time_axis)


def _build_input_shape(layer):
    """The input shape `layer` was built for (its public build config), or None."""
    config = layer.get_build_config() or {}
    return config.get("input_shape")


class _BlockProbe(keras.layers.Layer):
    """Runs `block` again and returns what its inner activation layers took and gave.

    Each call of an inner activation layer (recorded through `Layer.__call__` by
    `_keras_integration.recording_calls`) gives its output `y` and, through the
    layer's linear twin where it has an inline activation, its input `x`. Which
    calls there are is fixed when the probe model is built (the block's `call` is
    traced symbolically then), in `self.calls`: a list of inner layers in call order.
    The block's own output is not returned: the probe graph keeps calling the block
    itself, so that what follows it sees the block's output and mask unchanged.
    """

    def __init__(self, block, inner_layers):
        super().__init__(
            name=_unique_name(f"{block.name}_inner_activations"), dtype=block.dtype_policy
        )
        self._block = block
        self._inner_layers = list(inner_layers)
        self._twins = {}
        for layer in self._inner_layers:
            if not isinstance(layer, _ACTIVATION_LAYER_TYPES):
                twin = _PreActivation.of(layer, _build_input_shape(layer))
                if twin is not None:
                    self._twins[str(id(layer))] = twin
        self.calls = None
        self.supports_masking = True  # Takes masked inputs (the block reads their mask).

    def compute_mask(self, *args, **kwargs):
        return None  # Its outputs are measured with the block's input mask (see _Probe).

    def call(self, *args, **kwargs):
        with _keras_integration.recording_calls(self._inner_layers) as calls:
            self._block(*args, **kwargs)
        layers_called = [layer for layer, *_ in calls]
        if self.calls is None:
            self.calls = layers_called
        elif [id(x) for x in layers_called] != [id(x) for x in self.calls]:
            raise ValueError(
                f"{self._block.name}: its inner activation layers were called in another "
                f"order than when the probe was built ({[x.name for x in layers_called]} "
                f"against {[x.name for x in self.calls]}), so they cannot be measured."
            )
        outputs, inputs = {}, {}
        for index, (layer, call_args, call_kwargs, y) in enumerate(calls):
            outputs[str(index)] = y
            if isinstance(layer, _ACTIVATION_LAYER_TYPES):
                inputs[str(index)] = _with_crelu_input(layer, call_args[0])
            elif str(id(layer)) in self._twins:
                x = self._twins[str(id(layer))](*call_args, **call_kwargs)
                inputs[str(index)] = _with_crelu_input(layer, x)
        return {"outputs": outputs, "inputs": inputs}


class _Probe:
    """One model that returns every activation use's input and output, keyed by path.

    The model's graph is replayed through the same layer objects (shared weights)
    so each activation's output becomes reachable from the model's inputs; nested
    models are entered, and their layers are named "outer/inner", as are the
    activation layers inside blocks and wrappers (module docstring). A layer's
    second and later calls are named "layer@1", "layer@2"...

    Attributes:
        outputs, inputs: `{path: KerasTensor}`: each activation's output y and
            input x (x where known).
        caps: `{path: cap or None}`: the saturation value of ReLU6-like places.
        axes: `{path: int}`: the channel axis of y and x (module docstring).
        masks: `{path: KerasTensor}`: the Keras mask of the places that have one.
        unreached: Paths of activation layers inside blocks that could not be
            reached, each with the reason.
        model: `inputs -> [outputs, inputs]`, the dicts above.
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
        self.axes = {}
        self.masks = {}
        self.unreached = []
        self._prefix = []
        self._uses = {}
        self._tensor_axes = {}  # id(KerasTensor) -> (tensor, channel axis)
        self._replay(model, inputs)
        if self.unreached:
            warnings.warn(
                f"activation_stats cannot reach {len(self.unreached)} activation layer(s) "
                f"of {model.name!r}, which are left out: {'; '.join(self.unreached)}.",
                UnmeasuredActivationWarning,
                stacklevel=3,
            )
        if not self.outputs:
            raise ValueError(f"Model {model.name!r} has no activation layers to probe.")
        self.model = keras.Model(
            inputs, [self.outputs, self.inputs], name=f"{model.name}_activation_probe"
        )
        self._measuring_model = keras.Model(
            inputs, [self.outputs, self.inputs, self.masks], name=f"{model.name}_measuring_probe"
        )

    def _replay(self, model, inputs):
        if isinstance(model, keras.Sequential):
            for layer in model.layers:
                inputs = self._call(layer, inputs)
            return inputs
        # clone_model with an identity clone_function re-calls the same layers (and
        # keras.ops nodes), sending each call through `_call`. Its model is not needed.
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

    def _path(self, layer):
        return "/".join([*self._prefix, self._use_name(layer)])

    def _call(self, layer, *args, **kwargs):
        if isinstance(layer, keras.Sequential) or _keras_integration.is_functional(layer):
            self._prefix.append(self._use_name(layer))
            try:
                outputs = self._replay(layer, args[0])
            finally:
                self._prefix.pop()
            if outputs is None:
                # A nested functional model's replayed outputs are not returned by
                # clone_model, so what follows it runs on the whole nested model.
                outputs = layer(*args, **kwargs)
            self._note_axis(layer, args, outputs)
            return outputs
        inner = {}
        if isinstance(layer, keras.layers.Layer) and not _is_recurrent(layer):
            inner = _inner_activation_layers(layer, "")
        outputs = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.TimeDistributed) and is_activation_layer(layer.layer):
            self._measure_time_distributed(layer, args, kwargs, outputs)
        elif inner:
            self._measure_block(layer, inner, args, kwargs)
        elif is_activation_layer(layer):
            x = _pre_activation(layer, args, kwargs, args[0].shape)
            self._measure(self._path(layer), layer, outputs, x, self._unit_axis(layer, args))
        elif registry.operation_function_name(layer) is not None:
            x = _with_crelu_input(layer, args[0])
            mask = _keras_integration.keras_mask(args[0])
            axis = self._unit_axis(layer, args)
            self._measure(self._path(layer), layer, outputs, x, axis, mask=mask)
        self._note_axis(layer, args, outputs)
        return outputs

    def _measure(self, path, layer, y, x, axis, mask=None, cap_of=None):
        self.outputs[path] = y
        if x is not None:
            self.inputs[path] = x
        self.caps[path] = _saturation_cap(layer if cap_of is None else cap_of)
        self.axes[path] = axis
        mask = _keras_integration.keras_mask(y) if mask is None else mask
        if mask is not None:
            self.masks[path] = mask

    def _measure_time_distributed(self, wrapper, args, kwargs, outputs):
        """The wrapper's output is its inner layer's activation output, a time axis added."""
        inner = wrapper.layer
        step_shape = (args[0].shape[0], *args[0].shape[2:])

        def wrap(twin):
            return keras.layers.TimeDistributed(twin, name=_unique_name(twin.name))

        x = _pre_activation(inner, args, kwargs, step_shape, wrap=wrap)
        axis = _declared_channel_axis(inner)
        axis = -1 if axis is None else (axis + 1 if axis > 0 else axis)  # The time axis.
        path = f"{self._path(wrapper)}/{inner.name}"
        self._measure(path, wrapper, outputs, x, axis, cap_of=inner)

    def _measure_block(self, block, inner, args, kwargs):
        """Measures the activation layers inside `block` (a second run, recorded)."""
        block_path = self._path(block)
        by_layer = {id(layer): relative for relative, layer in inner.items()}
        probe = _BlockProbe(block, inner.values())
        try:
            recorded = probe(*args, **kwargs)
        except Exception as error:  # Whatever the block does, say so, measure the rest.
            places = ", ".join(f"{block_path}{relative}" for relative in inner)
            self.unreached.append(
                f"{places} (the block could not be run while recording: "
                f"{type(error).__name__}: {error})"
            )
            return
        mask = kwargs.get("padding_mask")
        if not isinstance(mask, keras.KerasTensor):
            first = args[0] if args else None
            mask = _keras_integration.keras_mask(first) if first is not None else None
        uses = {}
        for index, layer in enumerate(probe.calls or []):
            relative = by_layer[id(layer)]
            count = uses.get(relative, 0)
            uses[relative] = count + 1
            path = f"{block_path}{relative}" + (f"@{count}" if count else "")
            axis = _declared_channel_axis(layer)
            self._measure(
                path,
                layer,
                recorded["outputs"][str(index)],
                recorded["inputs"].get(str(index)),
                -1 if axis is None else axis,
                mask=mask,
            )
        for relative in inner:
            if relative not in uses:
                self.unreached.append(
                    f"{block_path}{relative} (not called through Layer.__call__ in "
                    "inference: the block runs its `call` directly, or not at all)"
                )

    def _unit_axis(self, layer, args):
        """The channel axis of `layer`'s output, for an activation layer or node."""
        axis = _declared_channel_axis(layer)
        if axis is not None:
            return axis
        if isinstance(layer, _LAST_AXIS_LAYERS) or not args:
            return -1
        return self._axis_of(args[0])

    def _axis_of(self, tensor):
        entry = self._tensor_axes.get(id(tensor))
        return -1 if entry is None else entry[1]

    def _note_axis(self, layer, args, outputs):
        """Records the channel axis of `layer`'s outputs (module docstring)."""
        axis = _declared_channel_axis(layer)
        if axis is None and not isinstance(layer, _LAST_AXIS_LAYERS) and args:
            first = keras.tree.flatten(args[0])
            if first and isinstance(first[0], keras.KerasTensor):
                axis = self._axis_of(first[0])
                shape = tuple(first[0].shape)
                for output in keras.tree.flatten(outputs):
                    if isinstance(output, keras.KerasTensor) and tuple(output.shape) == shape:
                        self._tensor_axes[id(output)] = (output, axis)
                return
        for output in keras.tree.flatten(outputs):
            if isinstance(output, keras.KerasTensor):
                self._tensor_axes[id(output)] = (output, -1 if axis is None else axis)

    def measure(self, data, batch_size=256):
        """`(stats, non_finite, examples)`: the figures of every place (NaN where the
        probe gave NaN or inf), `{place: examples with NaN or inf}` and the examples."""
        totals = {path: _Totals(self.caps[path], self.axes[path]) for path in self.outputs}
        examples = 0
        for batch in _input_batches(data, batch_size):
            examples += _batch_length(batch)
            outputs, inputs, masks = self._measuring_model(batch, training=False)
            for path, y in outputs.items():
                totals[path].add(y, inputs.get(path), masks.get(path))
        stats = {path: total.result() for path, total in totals.items()}
        non_finite = {path: total.non_finite for path, total in totals.items() if total.non_finite}
        return stats, non_finite, examples

    def stats(self, data, batch_size=256):
        """The figures of every place; raises where the probe gave NaN or inf."""
        stats, non_finite, examples = self.measure(data, batch_size)
        if non_finite:
            raise ValueError(
                f"{_non_finite_message(non_finite, examples)}: a dead unit cannot be told "
                "from a live one there. Look for NaN or inf in the probe and in the model's "
                "weights."
            )
        return stats


class _Totals:
    """Per-unit "ever non-zero" and "ever positive input" flags, zero/saturated counts,
    over the positions a mask keeps."""

    def __init__(self, cap, axis=-1):
        self.cap = cap
        self.axis = axis
        self.fired = self.positive = None
        self.outputs = self.zeros = self.saturated = 0
        self.non_finite = 0  # Examples with NaN or inf in y or x where the mask keeps.

    def add(self, y, x=None, mask=None):
        # NaN != 0 would count as firing, and a unit seen once as NaN as alive.
        non_finite = _examples_not_finite(y, mask)
        if x is not None:
            non_finite = ops.logical_or(non_finite, _examples_not_finite(x, mask))
        self.non_finite += _count(non_finite)
        y = ops.moveaxis(y, self.axis, -1)
        kept = _positions_kept(mask, y.shape)
        self.fired = _any_over_positions(_and(ops.not_equal(y, 0), kept), self.fired)
        if x is not None:
            x = ops.moveaxis(x, self.axis, -1)
            self.positive = _any_over_positions(_and(ops.greater(x, 0), kept), self.positive)
        self.outputs += _count(kept) if kept is not None else int(np.prod(y.shape))
        self.zeros += _count(_and(ops.equal(y, 0), kept))
        if self.cap is not None:
            self.saturated += _count(_and(ops.greater_equal(y, self.cap), kept))

    def result(self):
        result = {"units": int(self.fired.size), "dead_fraction": float(1.0 - self.fired.mean())}
        if self.positive is not None:
            result["inactive_fraction"] = float(1.0 - self.positive.mean())
        result["sparsity"] = self.zeros / self.outputs if self.outputs else 0.0
        if self.cap is not None:
            result["saturated_fraction"] = self.saturated / self.outputs if self.outputs else 0.0
        if self.non_finite:
            result.update({key: float("nan") for key in result if key != "units"})
        return result


def _examples_not_finite(tensor, mask):
    """One flag per example (first axis): NaN or inf at a position the mask keeps."""
    flags = _and(ops.logical_not(ops.isfinite(tensor)), _positions_kept(mask, tensor.shape))
    return ops.any(flags, axis=tuple(range(1, len(flags.shape))))


def _non_finite_message(non_finite, examples):
    """Names the places where the probe gave NaN or inf, and in how many examples."""
    places = ", ".join(
        f"{path!r} ({count} of {examples} examples)" for path, count in non_finite.items()
    )
    return f"The probe gives non-finite values (NaN or inf) at {places}"


def _positions_kept(mask, shape):
    """The mask broadcast over the units (last axis of `shape`), or None for no mask.

    A mask covers the leading axes of its tensor (`(batch, time)` for `(batch, time,
    units)`); one that does not is not applied.
    """
    if mask is None:
        return None
    mask_shape = tuple(mask.shape)
    if len(mask_shape) >= len(shape) or mask_shape != tuple(shape[: len(mask_shape)]):
        return None
    mask = ops.reshape(ops.cast(mask, "bool"), (*mask_shape, *[1] * (len(shape) - len(mask_shape))))
    return ops.broadcast_to(mask, tuple(shape))


def _and(flags, kept):
    return flags if kept is None else ops.logical_and(flags, kept)


def _count(flags):
    # Sums of int32 masks: ops.count_nonzero warns on the torch backend.
    return int(ops.convert_to_numpy(ops.sum(ops.cast(flags, "int32"))))


def _any_over_positions(mask, previous):
    """`mask` reduced to one flag per unit (last axis), or-ed into `previous`."""
    flags = ops.convert_to_numpy(ops.any(mask, axis=tuple(range(len(mask.shape) - 1))))
    return flags if previous is None else previous | flags


def _batch_length(batch):
    return int(keras.tree.flatten(batch)[0].shape[0])


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
    """Dead and inactive units, sparsity and saturation of each activation.

    For each use of each activation layer or graph node, and of each activation
    layer inside a block (see the module docstring), on `data`, in inference mode,
    over the positions the Keras mask keeps, with x the activation's input and y
    its output:
    ```
    dead_fraction       = (units with y == 0 for every example and position) / units
    inactive_fraction   = (units with x <= 0 for every example and position) / units
    sparsity            = (outputs with y == 0) / outputs
    saturated_fraction  = (outputs with y >= cap) / outputs     (only ReLU6-like layers)
    ```
    A unit is one index of the channel axis: axis 1 after a channels-first layer,
    the `axis` of a BatchNormalization or CReLU, otherwise the last. A ReLU's
    inactive fraction is its dead fraction; a Leaky ReLU's counts the units a ReLU
    would have lost. The model runs once per batch: one probe model returns every
    activation's input and output (a block with inner activation layers runs twice).

    Args:
        model: A built Functional or Sequential model; nested models are entered.
        data: A batch of inputs (an array, tensor, list or dict of them), an
            `(x, y)` or `(x, y, sample_weight)` tuple, or an iterable of such
            batches (a `tf.data.Dataset`, a generator). Labels are ignored.
        batch_size: Batch size for an in-memory `data`. Default: 256.

    Returns:
        `{layer_path: {"units", "dead_fraction", "inactive_fraction", "sparsity"[,
        "saturated_fraction"]}}` in graph order. Layers of nested models are named
        "nested_model/layer", those inside a block or a TimeDistributed
        "block/layer"; a layer's second and later calls "layer@1", "layer@2"...
        `inactive_fraction` is left out for an inline activation of a custom layer
        that cannot be rebuilt from its config with `activation=None`.

    Raises:
        ValueError: Where an activation's input or output holds NaN or inf on `data`
            (at a position the mask keeps), naming the places and how many examples:
            NaN is not 0, so every unit would look alive (a single NaN example gave
            0% dead). Look for NaN or inf in `data` and in the model's weights.

    Warns:
        UnmeasuredActivationWarning: Activation layers inside a block that could not
            be reached (named, with the reason); they are left out of the result.

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
    Where the probe gives NaN or inf at an activation (a NaN in the probe, or weights
    gone NaN), a `NonFiniteProbeWarning` names it and its figures are logged as NaN,
    as Keras logs a NaN loss; training goes on (`activation_stats` raises instead).

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
        stats, non_finite, examples = self._probe.measure(self.probe_batch, self.batch_size)
        if non_finite:
            # As Keras logs a NaN loss: the figures say NaN, and training goes on.
            warnings.warn(
                f"Epoch {epoch + 1}: {_non_finite_message(non_finite, examples)}; their "
                "figures are logged as NaN.",
                NonFiniteProbeWarning,
                stacklevel=2,
            )
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
    "NonFiniteProbeWarning",
    "UnmeasuredActivationWarning",
    "activation_stats",
    "is_activation_layer",
    "summarize",
]
