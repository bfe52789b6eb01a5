"""Bringing dead units back to life: ReDo's recycling (Sokar et al., ICML 2023).

A unit whose activation is (nearly) zero on a probe batch is recycled so that it
can learn again while the network's outputs on the probe stay what they were:

1. Its score (ReDo's) is its mean |output| over the probe (and over positions, for
   a convolution's channel) divided by the mean of that figure over its layer's
   units (+1e-9); a unit with score <= `threshold` is recycled. With `threshold=0`
   that is exactly the dead units. With `revive_inactive=True`, units whose input is
   <= 0 on the whole probe are recycled too: a Leaky ReLU's or PReLU's units that
   a ReLU would have lost.
2. Its incoming kernel column and its bias are re-drawn from the producing layer's
   own `kernel_initializer` and `bias_initializer` (a new seeded draw each call).
   A `BatchNormalization` between the producer and the activation gets that unit's
   gamma, beta, moving mean and moving variance reset from its initializers.
3. Its outgoing weights are set to 0 in every layer that consumes it, so the
   model's outputs on the probe are unchanged.
4. The optimizer's state for exactly the entries changed is set so that their first
   steps are no larger than their layer's ordinary ones (`reset_optimizer=True`):
   first moments (momentum) to 0, second moments (Adam's v, RMSprop's and Adagrad's
   accumulators, Adafactor's factored rows and columns) to the mean of the kept
   entries of the same row, else column, of the same variable. Zeroing both, as ReDo's
   code does (`reset_optimizer="zero"`), makes Keras's Adam, whose bias correction
   uses one step count for all entries, step a revived entry by (1-b1)/sqrt(1-b2) =
   3.16 learning rates from one gradient sample. docs/dying-relu/cures.md lists what
   each of Keras's optimizers gets.

Supported places: a `Dense` or `Conv1D`/`Conv2D`/`Conv3D` (channels last) with its
activation inline (`Dense(64, activation="relu")`), or followed by an activation
layer, optionally through a `BatchNormalization` on the last axis. Its output may
reach its consumers (`Dense` and the same convolutions, groups=1) through Dropout,
noise, pooling, global pooling, `Flatten` and `Reshape` where each index of the
consumer's input axis still holds one unit (Flatten interleaves the channels:
unit c of C is every index f with f % C == c). A Keras mask that such a layer takes
as a second input (`GlobalAveragePooling1D` after `Embedding(mask_zero=True)`) is
not a data input. Scores are taken over every position, padding included. Any other
producer or consumer (a residual `Add`, attention, concatenation, a subclassed block, a
recurrent layer), a layer called more than once, a layer inside a nested model, a model
output, CReLU: that place is skipped whole, with the reason in the report; never a
partial edit.

What is kept is the outputs on the probe, for units whose output is exactly 0 there.
A unit dead on the probe may be alive on other inputs, where its contribution is gone:
outputs on held-out data can move (docs/dying-relu/cures.md measures how far). An
inactive unit of a Leaky ReLU or PReLU (`revive_inactive=True`) still outputs its
negative side, small but not 0; zeroing its outgoing weights removes that contribution
from the outputs.
"""

import collections.abc
import numbers
import warnings
from dataclasses import dataclass
from dataclasses import field

import keras
import numpy as np
from keras import ops

from keras_relu import _keras_integration
from keras_relu import activations
from keras_relu import layers
from keras_relu.diagnostics import dead_units
from keras_relu.diagnostics import probes

_PRODUCERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_CONSUMERS = _PRODUCERS
# Layers that keep each unit's values in its own indices of the last axis.
_PER_UNIT_LAYERS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
)
_RESHAPING_LAYERS = (keras.layers.Flatten, keras.layers.Reshape)
_SCORE_EPSILON = 1e-9  # ReDo's: a layer whose units are all dead scores 0 everywhere.


class RevivalReport(dict):
    """What `revive_dead_units` did: `{place: units revived}` for every place it can edit.

    Places are named as `activation_stats` names them. A place with no unit at or
    below the threshold maps to 0; a place it cannot edit is not a key but is in
    `skipped`.

    Attributes:
        units: `{place: [unit indices revived]}`.
        skipped: `{place: reason}` for the places left untouched.
        total: Units revived in all places.
    """

    def __init__(self, units, skipped):
        super().__init__({place: len(indices) for place, indices in units.items()})
        self.units = units
        self.skipped = skipped

    @property
    def total(self):
        return sum(self.values())

    def __repr__(self):
        return f"RevivalReport({dict(self)!r}, skipped={self.skipped!r})"


@dataclass
class _Consumer:
    layer: keras.layers.Layer
    unit_of_row: np.ndarray  # Unit index held by each index of the kernel's input axis.


@dataclass
class _Place:
    name: str
    units: int
    producer: keras.layers.Layer
    batch_norm: keras.layers.Layer | None
    consumers: list = field(default_factory=list)


class _Skip(Exception):
    """A place that cannot be edited, and why."""


def _is_linear(layer):
    activation = getattr(layer, "activation", None)
    return activation is None or activation is keras.activations.linear


def _is_channels_last(layer):
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _check_editable(layer, role):
    """Raises `_Skip` unless `layer` is a plain Dense or convolution we can edit."""
    name = f"{role} {layer.name!r} ({type(layer).__name__})"
    if type(layer) not in _PRODUCERS:
        raise _Skip(f"{name} is not a Dense or Conv1D/2D/3D layer")
    if not _is_channels_last(layer):
        raise _Skip(f"{name} is channels_first")
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        raise _Skip(f"{name} is LoRA-enabled or quantized")
    if role == "consumer" and getattr(layer, "groups", 1) != 1:
        raise _Skip(f"{name} is a grouped convolution")


class _Graph:
    """Who produces and who consumes each tensor of a model's own graph."""

    def __init__(self, model):
        self.calls = _keras_integration.graph_nodes(model)
        self.producer = {}
        self.consumers = {}
        self.uses = {}
        for call in self.calls:
            layer, inputs, outputs = call
            self.uses[id(layer)] = self.uses.get(id(layer), 0) + 1
            for tensor in outputs:
                self.producer[id(tensor)] = call
            for tensor in inputs:
                self.consumers.setdefault(id(tensor), []).append(call)
        self.outputs = {id(tensor) for tensor in model.outputs}
        self.by_name = {
            layer.name: (layer, inputs, outputs) for layer, inputs, outputs in self.calls
        }

    def check_once(self, layer):
        if self.uses[id(layer)] != 1:
            raise _Skip(f"{layer.name!r} is called {self.uses[id(layer)]} times in the model")

    def only_consumer(self, tensor, of_layer):
        """The one call consuming `tensor` (the output of `of_layer`), else `_Skip`."""
        if id(tensor) in self.outputs:
            raise _Skip(f"the output of {of_layer.name!r} is a model output")
        calls = self.consumers.get(id(tensor), [])
        if len(calls) != 1:
            used_by = ", ".join(repr(layer.name) for layer, _, _ in calls)
            raise _Skip(f"the output of {of_layer.name!r} also feeds {used_by}")
        return calls[0]


def _data_inputs(inputs):
    """`inputs` less the Keras masks that come with them: a layer that takes a mask
    (`GlobalAveragePooling1D`, `BatchNormalization`) gets it as a second input
    tensor, which selects positions and carries no unit's values."""
    masks = {id(_keras_integration.keras_mask(tensor)) for tensor in inputs}
    return [tensor for tensor in inputs if id(tensor) not in masks]


def _plan_place(graph, name, units):
    """The producer, BatchNorm and consumers of place `name`, or `_Skip`."""
    if "/" in name:
        raise _Skip("it is inside a nested model")
    if "@" in name:
        raise _Skip("its layer is called more than once")
    if name not in graph.by_name:
        raise _Skip("it is not a layer call of the model")
    layer, inputs, outputs = graph.by_name[name]
    graph.check_once(layer)
    if isinstance(layer, layers.CReLU) or getattr(layer, "activation", None) is activations.crelu:
        raise _Skip("CReLU's units are pairs made from one input unit")
    batch_norm = None
    if isinstance(layer, dead_units._ACTIVATION_LAYER_TYPES):
        inputs = _data_inputs(inputs)
        if len(inputs) != 1 or id(inputs[0]) not in graph.producer:
            raise _Skip(f"{name!r} does not take one layer's output")
        producer, producer_inputs, produced = graph.producer[id(inputs[0])]
        if type(producer) is keras.layers.BatchNormalization:
            batch_norm = producer
            graph.check_once(batch_norm)
            graph.only_consumer(produced[0], batch_norm)
            if batch_norm.axis not in (-1, len(produced[0].shape) - 1):
                raise _Skip(f"BatchNormalization {batch_norm.name!r} is not on the last axis")
            if id(producer_inputs[0]) not in graph.producer:
                raise _Skip(f"{batch_norm.name!r} does not take one layer's output")
            producer, _, produced = graph.producer[id(producer_inputs[0])]
        _check_editable(producer, "producer")
        if not _is_linear(producer):
            raise _Skip(f"producer {producer.name!r} has its own activation")
        graph.check_once(producer)
        graph.only_consumer(produced[0], producer)
    else:
        producer = layer
        _check_editable(producer, "producer")
    width = producer.units if isinstance(producer, keras.layers.Dense) else producer.filters
    if width != units:
        raise _Skip(f"producer {producer.name!r} has {width} units, the place {units}")
    place = _Place(name, units, producer, batch_norm)
    _follow(graph, layer, outputs[0], np.arange(units), place.consumers)
    if not place.consumers:
        raise _Skip("its output reaches no Dense or convolution")
    return place


def _follow(graph, layer, tensor, unit_of_row, consumers):
    """Collects the consumers of `tensor` (from `layer`), through per-unit layers."""
    if id(tensor) in graph.outputs:
        raise _Skip(f"the output of {layer.name!r} is a model output")
    for consumer, inputs, outputs in graph.consumers.get(id(tensor), []):
        graph.check_once(consumer)
        kind = f"{consumer.name!r} ({type(consumer).__name__})"
        if len(_data_inputs(inputs)) != 1:
            raise _Skip(f"its output is combined with others in {kind}")
        if type(consumer) in _CONSUMERS:
            _check_editable(consumer, "consumer")
            rows = consumer.kernel.shape[-2]
            if rows != len(unit_of_row):
                raise _Skip(f"consumer {kind} has {rows} inputs, not {len(unit_of_row)}")
            consumers.append(_Consumer(consumer, unit_of_row))
        elif type(consumer) in _PER_UNIT_LAYERS:
            if not _is_channels_last(consumer):
                raise _Skip(f"{kind} is channels_first")
            _follow(graph, consumer, outputs[0], unit_of_row, consumers)
        elif type(consumer) in _RESHAPING_LAYERS:
            if not _is_channels_last(consumer):
                raise _Skip(f"{kind} is channels_first")
            width = outputs[0].shape[-1]
            # Row-major: index f of the flat tensor is unit row f % C, and index
            # f % C' of the new last axis; one unit per new index iff C | C'.
            if width is None or width % len(unit_of_row):
                raise _Skip(f"{kind} mixes units in its last axis ({width} wide)")
            tiled = np.tile(unit_of_row, width // len(unit_of_row))
            _follow(graph, consumer, outputs[0], tiled, consumers)
        else:
            raise _Skip(f"its output feeds {kind}, which is not supported")


def _draw(initializer, shape, dtype, seed):
    """A draw of `initializer` with a new seed (an unseeded initializer object draws
    the same values every call); initializers without a seed are called as they are."""
    config = initializer.get_config()
    if "seed" in config:
        initializer = type(initializer).from_config({**config, "seed": seed})
    return ops.convert_to_numpy(initializer(shape, dtype=dtype))


class _Edits:
    """New values and changed-entry masks per variable, assigned together at the end."""

    def __init__(self):
        self.values = {}
        self.masks = {}
        self.variables = {}

    def get(self, variable):
        key = id(variable)
        if key not in self.values:
            self.variables[key] = variable
            self.values[key] = ops.convert_to_numpy(variable.value).copy()
            self.masks[key] = np.zeros(variable.shape, dtype=bool)
        return self.values[key], self.masks[key]

    def set_units(self, variable, units, new_values):
        """Sets the last-axis entries `units` of `variable` from `new_values`."""
        value, mask = self.get(variable)
        value[..., units] = new_values[..., units]
        mask[..., units] = True

    def zero_rows(self, kernel, rows):
        """Sets the input-axis entries `rows` of a Dense or convolution kernel to 0."""
        value, mask = self.get(kernel)
        value[..., rows, :] = 0
        mask[..., rows, :] = True


class _Reviver:
    """The places of a model and how to edit each, worked out once."""

    def __init__(self, model):
        self.probe = dead_units._Probe(model)
        graph = _Graph(model)
        self.places = {}
        self.skipped = {}
        for name, output in self.probe.outputs.items():
            try:
                self.places[name] = _plan_place(graph, name, output.shape[-1])
            except _Skip as reason:
                self.skipped[name] = str(reason)

    def scores(self, data, batch_size):
        """`{place: (scores, inactive flags or None)}` on `data`, for editable places,
        `{place: examples with NaN or inf}` and the number of examples."""
        totals, counts, positive, non_finite = {}, {}, {}, {}
        examples = 0
        for batch in dead_units._input_batches(data, batch_size):
            examples += len(keras.tree.flatten(batch)[0])
            if not examples or not self.places:
                continue
            outputs, inputs = self.probe.model(batch, training=False)
            for name in self.places:
                y = ops.convert_to_numpy(outputs[name])
                _count_non_finite(non_finite, name, y, inputs.get(name))
                y = np.abs(y.reshape(-1, y.shape[-1]).astype("float64"))
                totals[name] = totals.get(name, 0.0) + y.sum(axis=0)
                counts[name] = counts.get(name, 0) + y.shape[0]
                if name in inputs:
                    x = ops.convert_to_numpy(inputs[name])
                    above = np.any(x.reshape(-1, x.shape[-1]) > 0, axis=0)
                    positive[name] = positive.get(name, False) | above
        if not examples:
            raise ValueError(f"`probe` holds no examples. Received: probe={data!r}")
        result = {}
        for name in self.places:
            mean_abs = totals[name] / counts[name]
            scores = mean_abs / (mean_abs.mean() + _SCORE_EPSILON)
            inactive = ~positive[name] if name in positive else None
            result[name] = (scores, inactive)
        return result, {name: count for name, count in non_finite.items() if count}, examples

    def revive(
        self,
        optimizer,
        data,
        threshold,
        revive_inactive,
        seed,
        batch_size,
        reset="neighbors",
        on_non_finite="raise",
    ):
        scores, non_finite, examples = self.scores(data, batch_size)
        skipped = dict(self.skipped)
        if non_finite:
            # NaN <= threshold is False: every unit there would look alive.
            message = dead_units._non_finite_message(non_finite, examples)
            if on_non_finite == "raise":
                raise ValueError(
                    f"{message}: their units cannot be scored, and nothing was changed. "
                    "Look for NaN or inf in the probe and in the model's weights."
                )
            warnings.warn(
                f"{message}: those places are not revived at this call.",
                dead_units.NonFiniteProbeWarning,
                stacklevel=3,
            )
            for name in non_finite:
                del scores[name]
                skipped[name] = "the probe gives NaN or inf there"
        rng = np.random.default_rng(seed if seed is not None else np.random.randint(2**31))
        chosen = {}
        for name, (score, inactive) in scores.items():
            selected = score <= threshold
            if revive_inactive and inactive is not None:
                selected |= inactive
            chosen[name] = np.flatnonzero(selected)
        edits = _Edits()
        # Incoming weights first, then outgoing: where one place's consumer is the
        # next place's producer, a unit revived in both keeps 0 from a revived input.
        for name, units in chosen.items():
            if len(units):
                self._redraw_incoming(self.places[name], units, edits, rng)
        for name, units in chosen.items():
            for consumer in self.places[name].consumers if len(units) else ():
                rows = np.flatnonzero(np.isin(consumer.unit_of_row, units))
                edits.zero_rows(consumer.layer.kernel, rows)
        if edits.values and optimizer is not None:
            _reset_optimizer(optimizer, edits, reset)
        for key, variable in edits.variables.items():
            variable.assign(edits.values[key].astype(variable.dtype))
        units = {name: [int(u) for u in indices] for name, indices in chosen.items()}
        return RevivalReport(units, skipped)

    @staticmethod
    def _redraw_incoming(place, units, edits, rng):
        producer = place.producer
        for variable, initializer in (
            (producer.kernel, producer.kernel_initializer),
            (producer.bias, getattr(producer, "bias_initializer", None)),
        ):
            if variable is not None:
                drawn = _draw(initializer, variable.shape, variable.dtype, int(rng.integers(2**31)))
                edits.set_units(variable, units, drawn)
        bn = place.batch_norm
        if bn is not None:
            for variable, initializer in (
                (bn.gamma, bn.gamma_initializer),
                (bn.beta, bn.beta_initializer),
                (bn.moving_mean, bn.moving_mean_initializer),
                (bn.moving_variance, bn.moving_variance_initializer),
            ):
                if variable is not None:
                    drawn = _draw(
                        initializer, variable.shape, variable.dtype, int(rng.integers(2**31))
                    )
                    edits.set_units(variable, units, drawn)


_RESET_MODES = {
    True: "neighbors",
    False: "keep",
    "neighbors": "neighbors",
    "zero": "zero",
    "keep": "keep",
}


def _neighbor_mean(value, revived, fallback):
    """`value` with each revived entry set to the mean of the kept (not revived) entries
    of its row (last axis), else of its column (second-last axis), else of the whole
    variable; `fallback` where the variable keeps no entry."""
    result = value.copy()
    kept = ~revived
    todo = revived.copy()
    for axis in ((-1, -2) if value.ndim >= 2 else ()) + (None,):
        count = kept.sum(axis=axis, keepdims=True)
        total = np.where(kept, value, 0).sum(axis=axis, keepdims=True)
        mean = np.broadcast_to(total / np.maximum(count, 1), value.shape)
        fill = todo & np.broadcast_to(count > 0, value.shape)
        result[fill] = mean[fill]
        todo &= ~fill
    result[todo] = fallback[todo]
    return result


def _reset_optimizer(optimizer, edits, mode):
    """Sets the optimizer state of exactly the changed entries (see `revive_dead_units`).

    Each slot's role (`_keras_integration.optimizer_slots`) says what to do:
    ```
    role          "neighbors" (True)          "zero"         "keep" (False)
    first         0                           fresh          kept
    second        mean of kept neighbours     fresh          kept
    rows/columns  the same, per factored row/column          kept
    average       the new weights             new weights    kept
    iterate       the new weights, in every mode (the weights are recomputed from it)
    ftrl_linear   the z that gives the new weights, in every mode
    ```
    "fresh" is what a new optimizer of the same config starts from. Every new value is
    worked out before any is assigned, so an error leaves the state as it was.
    """
    if mode == "keep" and not any(
        role in ("iterate", "ftrl_linear")
        for inner in _keras_integration.inner_optimizers(optimizer)
        for role in (_keras_integration.optimizer_state_roles(inner) or {}).values()
    ):
        return
    slots = _keras_integration.optimizer_slots(optimizer)
    tracked = [key for key in edits.variables if slots.get(key)]
    if mode == "neighbors":
        unknown = sorted(
            {
                (type(s.optimizer).__name__, s.kind)
                for key in tracked
                for s in slots[key]
                if s.role is None
            }
        )
        if unknown:
            raise ValueError(
                "`reset_optimizer=True` does not know what these optimizer states hold: "
                f"{unknown}. Pass reset_optimizer='zero' (every entry as a new optimizer "
                "starts) or False (keep them)."
            )
    fresh = {}
    if mode != "keep":
        owners = {}
        for key in tracked:
            for slot in slots[key]:
                owners.setdefault(id(slot.optimizer), (slot.optimizer, {}))[1][key] = (
                    edits.variables[key]
                )
        for owner, variables in owners.values():
            built = _keras_integration.fresh_optimizer_slots(owner, list(variables.values()))
            for key, variable in variables.items():
                fresh[key] = {
                    slot.kind: ops.convert_to_numpy(slot.variable.value)
                    for slot in built[id(variable)]
                }
    assignments = []
    for key in tracked:
        mask, weights = edits.masks[key], edits.values[key]
        new = {}
        # FTRL's z last: it is worked out from the new squared-gradient accumulator.
        for slot in sorted(slots[key], key=lambda slot: slot.role == "ftrl_linear"):
            value = ops.convert_to_numpy(slot.variable.value).copy()
            role = slot.role
            if role == "iterate" or (role == "average" and mode != "keep"):
                value[mask] = weights[mask]
            elif role == "ftrl_linear":
                accumulator = new.get(
                    "_accumulators",
                    ops.convert_to_numpy(
                        next(s.variable.value for s in slots[key] if s.kind == "_accumulators")
                    ),
                )
                z = _keras_integration.ftrl_linear(slot.optimizer, weights, accumulator)
                value[mask] = z[mask]
            elif mode != "keep":
                start = fresh[key][slot.kind]
                entries = mask
                if role == "rows":
                    entries = mask.all(axis=-1)
                elif role == "columns":
                    entries = mask.all(axis=-2)
                if mode == "neighbors" and role in ("second", "rows", "columns"):
                    value = _neighbor_mean(value, entries, start)
                else:
                    value[entries] = start[entries]
            new[slot.kind] = value
            assignments.append((slot.variable, value))
    for slot, value in assignments:
        slot.assign(value.astype(slot.dtype))


def _count_non_finite(counts, name, y, x):
    """Adds to `counts[name]` the examples whose `y` or `x` holds NaN or inf."""
    bad = ~np.isfinite(y.reshape(len(y), -1)).all(axis=1)
    if x is not None:
        x = ops.convert_to_numpy(x)
        bad |= ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    counts[name] = counts.get(name, 0) + int(bad.sum())


def _check_arguments(threshold, revive_inactive, seed, batch_size):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"`threshold` must be a number. Received: threshold={threshold!r}")
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"`threshold` must be finite and >= 0. Received: threshold={threshold!r}")
    if not isinstance(revive_inactive, bool):
        raise TypeError(
            "`revive_inactive` must be True or False. "
            f"Received: revive_inactive={revive_inactive!r}"
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"`seed` must be None or an int >= 0. Received: seed={seed!r}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")


def _reset_mode(reset_optimizer):
    """The mode `reset_optimizer` names: "neighbors" (True), "zero" or "keep" (False)."""
    message = (
        "`reset_optimizer` must be True, False, 'neighbors', 'zero' or 'keep'. "
        f"Received: reset_optimizer={reset_optimizer!r}"
    )
    if not isinstance(reset_optimizer, (bool, str)):
        raise TypeError(message)
    if reset_optimizer not in _RESET_MODES:
        raise ValueError(message)
    return _RESET_MODES[reset_optimizer]


def _optimizer_of(model, mode):
    """`model.optimizer`, checked for `mode`: "neighbors" needs to know its state."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and mode == "neighbors":
        unknown = [
            type(inner).__name__
            for inner in _keras_integration.inner_optimizers(optimizer)
            if _keras_integration.optimizer_state_roles(inner) is None
        ]
        if unknown:
            raise ValueError(
                f"`reset_optimizer=True` knows the state of Keras's optimizers, not of "
                f"{', '.join(unknown)}: pass reset_optimizer='zero' (the revived entries' "
                "state as a new optimizer starts) or False (keep it). "
                f"Received: optimizer={optimizer!r}"
            )
    return optimizer


def revive_dead_units(
    model,
    probe,
    threshold=0.0,
    revive_inactive=False,
    reset_optimizer=True,
    seed=None,
    batch_size=256,
):
    """Recycles the dead units of `model` as ReDo does (see the module docstring).

    Each unit whose ReDo score on `probe` (its mean |output| over its layer's mean)
    is <= `threshold` gets new incoming weights from its layer's initializers, zero
    outgoing weights, and a fresh optimizer state for those entries. The model's
    outputs on `probe` are unchanged by the call (for units whose output was 0 there;
    on other inputs, where such a unit fired, they can move); the revived units can
    learn again.

    Args:
        model: A built Functional or Sequential model.
        probe: The inputs to score units on, as `activation_stats` takes them
            (ReDo used a batch of 256 to 1,024 examples).
        threshold: Revive units whose score is at or below this. Default: 0.0
            (exactly the dead units); ReDo's paper used 0.025 to 0.1.
        revive_inactive: Also revive units whose activation input is <= 0 on the
            whole probe (the Leaky ReLU or PReLU units a ReLU would have lost).
            Their negative-side output, not 0, leaves the outputs with their
            outgoing weights. Default: False.
        reset_optimizer: The optimizer state (`model.optimizer`, once built) of the
            changed entries. True or "neighbors": first moments 0, second moments the
            mean of their kept neighbours' (same row, else column), so their first steps
            are their layer's ordinary ones; refuses optimizers that are not Keras's (or
            subclasses) with a `ValueError`. "zero": as a new optimizer of the same
            config starts (ReDo's code; any optimizer whose state has its variables'
            shapes). False or "keep": left as it is. In every mode, FTRL's linear term
            and ScheduleFreeAdamW's iterate follow the new weights (the weights are
            recomputed from them). Default: True.
        seed: Seed of the new weights, or None to draw it from NumPy's global
            generator (`keras.utils.set_random_seed` seeds it). Default: None.
        batch_size: Batch size for an in-memory `probe`. Default: 256.

    Returns:
        A `RevivalReport`: a dict `{place: units revived}` over the places it can
        edit (named as `activation_stats` names them), with `.units` (the indices),
        `.skipped` (`{place: reason}` for the places left alone) and `.total`.

    Raises:
        ValueError: Where an editable place's input or output holds NaN or inf on
            `probe` (naming the places and how many examples), before any change:
            NaN scores as alive, so a single NaN example would revive nothing.

    Example:
    >>> report = keras_relu.diagnostics.revive_dead_units(model, x_train[:256])
    >>> report, report.skipped
    ({'re_lu': 12, 're_lu_1': 0}, {'re_lu_2': "its output feeds 'add' (Add), ..."})
    """
    _check_arguments(threshold, revive_inactive, seed, batch_size)
    mode = _reset_mode(reset_optimizer)
    optimizer = _optimizer_of(model, mode)
    reviver = _Reviver(model)
    return reviver.revive(optimizer, probe, threshold, revive_inactive, seed, batch_size, mode)


class ReviveDeadUnits(keras.callbacks.Callback):
    """Calls `revive_dead_units` during training: every N batches, or after each epoch.

    Each epoch's logs get the units revived in that epoch (so they reach `History`,
    `CSVLogger` and `TensorBoard`; list this callback before those):
    ```
    revived_units            total over all places
    revived_units/<place>    per place it can edit
    ```
    Batch logs get the same figures for the batch at which it revives. List a
    `DeadUnitMonitor` before this callback to measure what training left dead, not
    what revival left. `reports` holds `(epoch, batch or None, RevivalReport)` per call.
    Where the probe gives NaN or inf at a place (a NaN in the probe, or weights gone
    NaN), a `NonFiniteProbeWarning` names it, that place is left alone at that call
    (in the report's `skipped`), and training goes on (`revive_dead_units` raises).

    Args:
        probe: The inputs to score units on (see `revive_dead_units`).
        every_n_batches: Revive after every this many training batches (counted over
            the whole training), or None to revive at the end of each epoch.
            Default: None.
        threshold, revive_inactive, reset_optimizer, batch_size: As for
            `revive_dead_units`.
        seed: Seed of the sequence of draws (each call draws anew: the new weights, and
            the probe sample), or None for NumPy's global generator. Default: None.
        probe_size: Arrays (or a tuple or dict of arrays) of more rows than this are
            scored on a new random sample of `probe_size` rows at each call, as ReDo
            scores on a fresh batch; a dataset (`tf.data.Dataset`, `PyDataset`, torch
            `DataLoader`) is read again at each call up to `probe_size` examples (a
            shuffled one gives a new sample). None: the whole probe each time.
            Default: 256.

    Raises:
        TypeError: For an iterator `probe` (a generator): the first call would use it
            up. Materialize it, or pass the dataset it comes from.

    Example:
    >>> reviver = keras_relu.diagnostics.ReviveDeadUnits(x_train, every_n_batches=100, seed=0)
    >>> history = model.fit(x, y, epochs=5, callbacks=[reviver])
    >>> history.history["revived_units"]  # one value per epoch
    """

    def __init__(
        self,
        probe,
        every_n_batches=None,
        threshold=0.0,
        revive_inactive=False,
        reset_optimizer=True,
        seed=None,
        batch_size=256,
        probe_size=256,
    ):
        super().__init__()
        _check_arguments(threshold, revive_inactive, seed, batch_size)
        if probe_size is not None and (
            isinstance(probe_size, bool)
            or not isinstance(probe_size, numbers.Integral)
            or probe_size < 1
        ):
            raise ValueError(
                f"`probe_size` must be None or an int >= 1. Received: probe_size={probe_size!r}"
            )
        if isinstance(probe, collections.abc.Iterator):
            raise TypeError(
                "`probe` must be arrays or a re-iterable dataset (a `tf.data.Dataset`, a "
                "`keras.utils.PyDataset`, a torch `DataLoader`): an iterator such as a "
                "generator is used up by the first revival. Pass `np.concatenate(list(...))` "
                "of it, or the dataset it comes from. "
                f"Received: probe={probe!r}"
            )
        if every_n_batches is not None and (
            isinstance(every_n_batches, bool)
            or not isinstance(every_n_batches, numbers.Integral)
            or every_n_batches < 1
        ):
            raise ValueError(
                "`every_n_batches` must be None or an int >= 1. "
                f"Received: every_n_batches={every_n_batches!r}"
            )
        self.probe = probe
        self.probe_size = probe_size
        self.every_n_batches = every_n_batches
        self.threshold = threshold
        self.revive_inactive = revive_inactive
        self.reset_optimizer = _reset_mode(reset_optimizer)
        self.seed = seed
        self.batch_size = batch_size
        self.reports = []
        self._reviver = None
        self._rng = None
        self._probe_rng = None
        self._steps = 0
        self._epoch = 0
        self._epoch_counts = {}

    def on_train_begin(self, logs=None):
        _optimizer_of(self.model, self.reset_optimizer)  # An unknown optimizer fails here.
        self._reviver = _Reviver(self.model)
        self._rng = np.random.default_rng(self.seed)
        # Its own generator: the weights' draws stay those of the same seed without it.
        self._probe_rng = np.random.default_rng(None if self.seed is None else [self.seed, 1])
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_counts = {name: 0 for name in self._reviver.places}

    def _revive(self, batch, logs):
        # `self.model` first: on JAX it copies the training state into the variables,
        # and the next step reads them back with what was assigned here.
        model = self.model
        report = self._reviver.revive(
            _optimizer_of(model, self.reset_optimizer),
            self._probe_sample(),
            self.threshold,
            self.revive_inactive,
            int(self._rng.integers(2**31)),
            self.batch_size,
            self.reset_optimizer,
            on_non_finite="warn",
        )
        self.reports.append((self._epoch, batch, report))
        for name, count in report.items():
            self._epoch_counts[name] += count
        if logs is not None:
            logs.update(_figures(report))

    def _probe_sample(self):
        """This call's probe: `probe_size` random rows of in-memory arrays (a new draw
        each call), the first `probe_size` examples of a dataset's next pass."""
        if self.probe_size is None:
            return self.probe
        leaves = keras.tree.flatten(self.probe)
        if leaves and all(hasattr(leaf, "shape") for leaf in leaves):
            if leaves[0].shape[0] <= self.probe_size:
                return self.probe
            return probes.sample_probe(
                self.probe, self.probe_size, seed=int(self._probe_rng.integers(2**31))
            )
        return _first_examples(self.probe, self.probe_size)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every_n_batches and self._steps % self.every_n_batches == 0:
            self._revive(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_batches is None:
            self._revive(None, None)
        if logs is not None:
            logs.update(_figures(self._epoch_counts))


def _first_examples(data, size):
    """The batches of one pass over `data` up to `size` examples, the last one cut."""
    taken = 0
    for batch in data:
        count = len(keras.tree.flatten(batch)[0])
        if taken + count > size:
            batch = keras.tree.map_structure(lambda a, n=size - taken: a[:n], batch)
        yield batch
        taken += count
        if taken >= size:
            return


def _figures(counts):
    figures = {"revived_units": sum(counts.values())}
    figures.update({f"revived_units/{name}": count for name, count in counts.items()})
    return figures


__all__ = ["ReviveDeadUnits", "RevivalReport", "revive_dead_units"]
