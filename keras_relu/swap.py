"""Putting another activation into a model you already have, its weights kept.

`swap_activations` rebuilds a Functional or Sequential model layer by layer from
the layers' configs (as `keras.models.clone_model` and loading a `.keras` file
do), replaces every place that computes one of the `old` functions with a new
layer from `keras_relu.get`, and copies every weight of the original into the
copy. Places it cannot swap so that the swap survives saving fail with a
`ValueError` naming them.

Names. A replaced activation layer's new layer takes its name. An inline
activation (`Dense(..., activation="relu")`) becomes a new layer after the
now-linear layer, named `<layer>_<new>`, so that the layer that holds the
weights keeps its name and its weights' paths. One exception: where that layer
produces one of a Functional model's outputs (nested ones included; a
Sequential model has no output names), the new layer takes its name and the
linear layer becomes `<layer>_linear`. Keras names a Functional model's outputs after
the layers producing them (`output_names`, recomputed from layer names when a
saved model is loaded), and a loss dict, targets keyed by output name and
serving signatures depend on them; layer names must be unique, so keeping the
output's name means moving the name to the layer that now produces the output.
Weights are copied pair by pair (original layer, its copy), never by layer name, so
the renaming costs nothing there; what changes is `get_layer(<name>)`, which
now returns the activation layer, and the linear layer's weight paths.
"""

import collections

import keras
from keras import ops

from keras_relu import _keras_integration
from keras_relu import activations
from keras_relu import layers
from keras_relu import registry

# Layers that apply their `activation` to their output, last: such a layer is
# rebuilt with activation="linear" and followed by the new activation layer.
_INLINE_ACTIVATION_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
# Where else an activation function can sit in a layer (recurrent cells and
# layers, custom layers): there it cannot be moved out, so a match is refused.
_ACTIVATION_ATTRIBUTES = ("activation", "recurrent_activation")
# Recognition shared with the diagnostics lives in the registry; kept here for callers.
function_name = registry.function_name


def _relu_layer_name(layer):
    # keras.layers.ReLU and ours: ReLU, ReLU6 or Leaky ReLU, depending on arguments.
    if layer.threshold != 0:
        return None
    if layer.negative_slope == 0:
        return {None: "relu", 6: "relu6"}.get(layer.max_value)
    return "leaky_relu" if layer.max_value is None else None


# What an activation layer computes, by class: a name, or a function of the layer.
_LAYER_FUNCTIONS = (
    (keras.layers.Activation, lambda layer: function_name(layer.activation)),
    (keras.layers.ReLU, _relu_layer_name),
    (layers.ReLU, _relu_layer_name),
    (keras.layers.LeakyReLU, "leaky_relu"),
    (keras.layers.PReLU, "prelu"),
    (keras.layers.ELU, "elu"),
    (keras.layers.Softmax, "softmax"),
    *((v.layer, v.name) for v in registry.VARIANTS if v.layer is not layers.ReLU),
)


def layer_function_name(layer):
    """The registry name of what an activation layer computes, or None for other layers."""
    for cls, name in _LAYER_FUNCTIONS:
        if type(layer) is cls:
            return name(layer) if callable(name) else name
    return None


def _old_name(name):
    """The registry name of one entry of `old`, or None if it names no activation."""
    if not isinstance(name, str) or name.lower() == "linear":
        return None
    try:
        return registry.variant(name).name
    except ValueError:
        pass
    try:
        return function_name(keras.activations.get(name))
    except (ValueError, TypeError):
        return None


def _old_names(old):
    names = [old] if isinstance(old, str) else old
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(
            f"`old` must be an activation name or a non-empty list of names. Received: old={old!r}"
        )
    canonical = {_old_name(name) for name in names}
    if None in canonical:
        raise ValueError(
            "`old` must name activation functions, as `activation=` strings or "
            f"`keras_relu.names()`. Received: old={old!r}"
        )
    if "crelu" in canonical:
        raise ValueError(
            "`old` cannot contain 'crelu': CReLU doubles its input's channels, so the layer "
            f"after it could not keep its weights with another activation. Received: old={old!r}"
        )
    return canonical


def _check_new(new, kwargs):
    if not isinstance(new, str):
        raise ValueError(f"`new` must be a name from `keras_relu.names()`. Received: new={new!r}")
    if registry.variant(new).name == "crelu":
        raise ValueError(
            "`new` cannot be 'crelu': CReLU doubles the channels, so the layer after each "
            "swapped place could not keep its weights. Build a CReLU model with "
            "`keras_relu.CReLU` and train it instead. Received: new='crelu'"
        )
    if "name" in kwargs:
        raise ValueError(
            "Every swapped place gets a layer of its own, named after the place; `name` "
            f"cannot be given. Received: name={kwargs['name']!r}"
        )
    registry.get(new, **kwargs)  # The layers' own ValueError for bad arguments, before any work.


def _refusal(where, what, why):
    return ValueError(f"Cannot swap the activation at {where}: {what}. {why}")


_NESTED_WHY = (
    "A layer that is not a Functional or Sequential model rebuilds its inner layers from "
    "its own config when a saved model is loaded, so a swap made inside it would be lost "
    "on saving: pass the activation to that layer's constructor, or leave this one out of "
    "`old`."
)


_RECURRENT_WHY = (
    "A recurrent layer applies it at every step, inside the recurrence, where no layer "
    "can take its place: build the layer with the activation you want."
)


_WRAPPED_WHY = (
    "Only the inline activation of a Dense, EinsumDense or convolution layer can be moved "
    "out of a TimeDistributed wrapper (an activation layer inside one is replaced whole): "
    "build the wrapped layer with the activation you want."
)


class _Swapper:
    """One swap: clones of every layer (shared layers stay shared), the new activation
    layers, and the (original, clone) pairs whose weights are copied at the end."""

    def __init__(self, old, new, kwargs, taken_names, output_layers):
        self.old, self.new, self.kwargs = old, new, kwargs
        self.taken_names = taken_names
        self.output_layers = output_layers  # ids of the layers that name a model's outputs
        self.clones = {}  # id(original layer) -> its clone
        self.pairs = []  # (original, clone, where): layers rebuilt from their config
        self.followers = {}  # id(clone) -> the activation layer called on its output
        self.unwrapped = set()  # ids of the new layers that replace a wrapper whole
        self.added = []  # the new activation layers
        self.replaced = []  # the activation layers they replace (a PReLU's alpha goes with it)
        self.found = collections.Counter()  # every activation seen, for the no-match error

    def model(self, model, where):
        if isinstance(model, keras.Sequential):
            return self._sequential(model, where)
        # New inputs named as the original's (clone_model would name them after tensors).
        names = {id(layer.output): layer.name for layer in model.layers if _is_input(layer)}
        inputs = keras.tree.map_structure(
            lambda x: keras.Input(
                batch_shape=x.shape, dtype=x.dtype, sparse=x.sparse, name=names.get(id(x))
            ),
            model.input,
        )
        return keras.models.clone_model(
            model,
            input_tensors=inputs,
            clone_function=lambda layer: self.clone(layer, where),
            call_function=self._call,
        )

    def clone(self, layer, where):
        if id(layer) not in self.clones:
            self.clones[id(layer)] = self._clone(layer, f"{where}/{layer.name}")
        return self.clones[id(layer)]

    def _clone(self, layer, where):
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            return self.model(layer, where)
        # A keras.ops or keras_relu.activations call in the graph (rrelu(training=True)'s
        # node is a layer, to own its seed generator).
        if isinstance(layer, activations.ActivationCall) or not isinstance(
            layer, keras.layers.Layer
        ):
            computes = self._seen(registry.operation_function_name(layer))
            if computes in self.old:
                return self._activation_layer(layer, layer.name)
            return self._from_config(layer, where)
        if self._seen(layer_function_name(layer)) in self.old:
            self.replaced.append(layer)
            return self._activation_layer(layer, layer.name)
        if isinstance(layer, keras.layers.TimeDistributed):
            return self._time_distributed(layer, where)
        for attribute in _ACTIVATION_ATTRIBUTES:
            function = getattr(layer, attribute, None)
            inline = self._seen(function_name(function), function)
            if inline not in self.old:
                continue
            if attribute != "activation" or not isinstance(layer, _INLINE_ACTIVATION_LAYERS):
                recurrent = isinstance(layer, keras.layers.RNN) or attribute != "activation"
                raise _refusal(
                    where,
                    f"{type(layer).__name__} applies {inline!r} as its `{attribute}`",
                    _RECURRENT_WHY if recurrent else _NESTED_WHY,
                )
            return self._followed(layer, where, {"activation": "linear"})
        self._refuse_inside(layer, where)
        return self._from_config(layer, where)

    def _followed(self, place, where, linear):
        """`place` rebuilt with the config changes `linear` (which make it linear),
        followed by the new activation layer, named `<place>_<new>`, except after a layer
        that names a model's output: Keras names outputs after the layers producing them
        (on loading too), so there the new layer takes the name and the linear one
        becomes `<place>_linear`."""
        if id(place) in self.output_layers:
            linear["name"] = self._free_name(f"{place.name}_linear")
            follower_name = place.name
        else:
            follower_name = self._free_name(f"{place.name}_{self.new}")
        clone = self._from_config(place, where, linear)
        self.followers[id(clone)] = self._activation_layer(place, follower_name)
        return clone

    def _time_distributed(self, wrapper, where):
        """TimeDistributed applies its layer to every step alone; an elementwise function
        (or the last axis's softmax) after it is the same at every step, so it can follow
        the wrapper: the inner layer is made linear, and its channels stay the last axis."""
        inner, inside = wrapper.layer, f" inside {type(wrapper).__name__}"
        if self._seen(layer_function_name(inner), inside=inside) in self.old:
            self.replaced.append(wrapper)
            replacement = self._activation_layer(wrapper, wrapper.name)
            self.unwrapped.add(id(replacement))
            return replacement
        function = getattr(inner, "activation", None)
        inline = self._seen(function_name(function), function, inside)
        if inline in self.old and isinstance(inner, _INLINE_ACTIVATION_LAYERS):
            inner_config = keras.saving.serialize_keras_object(inner)
            inner_config["config"]["activation"] = "linear"
            return self._followed(wrapper, where, {"layer": inner_config})
        self._refuse_inside(wrapper, where, counted=(inner,))
        return self._from_config(wrapper, where)

    def _seen(self, name, function=None, inside=""):
        """Counts what was found, for the error when nothing matches; returns `name`."""
        if name is None and callable(function) and function is not keras.activations.linear:
            self.found[f"{getattr(function, '__name__', function)!s} (unknown){inside}"] += 1
        elif name is not None:
            self.found[f"{name}{inside}"] += 1
        return name

    def _refuse_inside(self, layer, where, counted=()):
        """Refuses `layer` if one of its inner layers computes `old`; `counted`: inner
        layers already seen (they are checked, not counted again)."""
        inside = f" inside {type(layer).__name__}"
        for inner in _keras_integration.sublayers(layer):
            seen = self._seen if inner not in counted else lambda name, *_: name
            names = [seen(layer_function_name(inner), None, inside)]
            for attribute in _ACTIVATION_ATTRIBUTES:
                function = getattr(inner, attribute, None)
                names.append(seen(function_name(function), function, inside))
            for name in names:
                if name in self.old:
                    raise _refusal(
                        where,
                        f"{type(layer).__name__} computes {name!r} in its inner layer "
                        f"{inner.name!r} ({type(inner).__name__})",
                        _inner_why(layer, inner),
                    )

    def _from_config(self, layer, where, changes=None):
        config = {**layer.get_config(), **(changes or {})}
        try:
            clone = type(layer).from_config(config)
        except Exception as error:
            raise ValueError(
                f"Cannot copy {where}: {type(layer).__name__} cannot be rebuilt from its own "
                f"config ({type(error).__name__}: {error}). swap_activations rebuilds every "
                "layer from its config, as loading a saved model does."
            ) from error
        if isinstance(layer, keras.layers.Layer):
            self.pairs.append((layer, clone, where))
        return clone

    def _activation_layer(self, place, name):
        """A new layer for `place`, with its compute dtype policy and trainable flag (a
        keras.ops call in the graph has neither)."""
        settings = {}
        if isinstance(place, keras.layers.Layer):
            settings = {"dtype": _compute_policy(place), "trainable": place.trainable}
        layer = registry.get(self.new, **{**settings, **self.kwargs}, name=name)
        self.added.append(layer)
        return layer

    def _free_name(self, name):
        candidate, number = name, 1
        while candidate in self.taken_names:
            candidate, number = f"{name}_{number}", number + 1
        self.taken_names.add(candidate)
        return candidate

    def _call(self, layer, *args, **kwargs):
        if id(layer) in self.unwrapped:
            # The wrapper's call took `mask`; the activation layer gets it the Keras way.
            kwargs.pop("mask", None)
        outputs = layer(*args, **kwargs)
        follower = self.followers.get(id(layer))
        return outputs if follower is None else follower(outputs)

    def _sequential(self, model, where):
        new_layers = []
        if model.built:
            spec = model.inputs[0]
            new_layers.append(keras.Input(batch_shape=spec.shape, dtype=spec.dtype, name=spec.name))
        for layer in model.layers:
            clone = self.clone(layer, where)
            new_layers.append(clone)
            if id(clone) in self.followers:
                new_layers.append(self.followers[id(clone)])
        clone = keras.Sequential(new_layers, name=model.name, trainable=model.trainable)
        if model.compiled:  # As keras.models.clone_model does for Functional models.
            clone.compile_from_config(model.get_compile_config())
        return clone

    def copy_weights(self, original, swapped):
        """Copies every weight by value; fails if one is left out or shared."""
        copied, targets = set(), set()
        for layer, clone, where in self.pairs:
            sources, destinations = _in_order_of(layer.weights, clone.weights)
            shapes = [tuple(w.shape) for w in sources]
            if shapes != [tuple(w.shape) for w in destinations]:
                raise ValueError(
                    f"Cannot copy the weights of {where}: its copy, rebuilt from its config, "
                    f"has weights of shapes {[tuple(w.shape) for w in destinations]}, "
                    f"the original {shapes}."
                )
            for source, destination in zip(sources, destinations, strict=True):
                destination.assign(ops.convert_to_numpy(source))
                copied.add(id(source))
                targets.add(id(destination))
        copied |= {id(w) for layer in self.replaced for w in layer.weights}
        missing = [w.path for w in original.weights if id(w) not in copied]
        added = {id(w) for layer in self.added for w in layer.weights}
        unexpected = [w.path for w in swapped.weights if id(w) not in targets | added]
        originals = {id(w) for w in original.weights}
        shared = [w.path for w in swapped.weights if id(w) in originals]
        if missing or unexpected or shared:
            raise ValueError(
                f"Could not copy {original.name!r} weight for weight: original weights not "
                f"copied {missing}, new weights with no original {unexpected}, weights shared "
                f"with the original {shared}."
            )


def _in_order_of(sources, destinations):
    """`sources` and `destinations`, the latter in the order of the former's names where
    the names tell them apart: a layer rebuilt from its config may create its variables
    in another order than the original did (a float8-quantized Dense, quantized in place,
    made its kernel first). Else (repeated names, as in a block of Dense layers) in the
    order the layers track them, which the same config reproduces."""
    names = [w.name for w in sources]
    by_name = {w.name: w for w in destinations}
    if (
        len(set(names)) != len(names)
        or set(names) != set(by_name)
        or len(by_name) != len(destinations)
    ):
        return sources, destinations
    return sources, [by_name[name] for name in names]


def _inner_why(layer, inner):
    if isinstance(inner, keras.layers.RNN) or hasattr(inner, "state_size"):  # Or a cell.
        return _RECURRENT_WHY
    if isinstance(layer, keras.layers.TimeDistributed):
        return _WRAPPED_WHY
    return _NESTED_WHY


def _compute_policy(place):
    """The dtype policy a new activation layer takes from `place`: a quantized policy
    (`model.quantize("int8")` gives a Dense "int8_from_float32") is the quantized layer's
    own business; an activation after it computes in the float policy it came from."""
    policy = place.dtype_policy
    if isinstance(policy, keras.dtype_policies.QuantizedDTypePolicy):
        return keras.DTypePolicy(policy.get_config()["source_name"])
    return policy


def _output_layers(model):
    """ids of the layers (in `model` and its nested Functional models) whose names are
    the models' output names."""
    found = set()
    if _keras_integration.is_functional(model):
        names = set(model.output_names)
        found = {id(layer) for layer in model.layers if layer.name in names}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            found |= _output_layers(layer)
    return found


def _is_input(layer):
    return isinstance(layer, keras.layers.InputLayer)


def _is_graph_model(model):
    return isinstance(model, keras.Sequential) or _keras_integration.is_functional(model)


def _layer_names(model):
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            names |= _layer_names(layer)
    return names


def swap_activations(model, old, new, **kwargs):
    """Returns a copy of `model` with activation `old` replaced by `new`, weights kept.

    Every place that computes one of the `old` functions gets its own new layer,
    `keras_relu.get(new, **kwargs)`: a `keras.layers.Activation` with that function,
    Keras's and this package's activation layers (`keras.layers.ReLU()` is "relu",
    `keras.layers.ReLU(6.0)` is "relu6", `LeakyReLU`, `ELU`, ...), the
    `activation=` of Dense, EinsumDense and convolution layers (rebuilt linear and
    followed by the new layer), and the same inside `keras.layers.TimeDistributed`
    (the wrapped layer is rebuilt linear and the new layer follows the wrapper, so
    a PReLU's slopes are per channel of the same last axis; a wrapped activation
    layer is replaced with its wrapper). Other activations stay as they are.
    Nested Functional and Sequential models are entered; shared layers stay shared.

    The copy shares no variable with `model`, which is left unchanged; every weight
    of `model` is copied into it by value, except those of replaced activation
    layers (a replaced PReLU's alpha goes with the function it belonged to).
    Quantized layers (`model.quantize(...)`) stay quantized, their quantized weights
    copied as they are.

    Swapped places keep their names, dtype policy and `trainable` flag: a Dense's
    new activation is named `<dense name>_<new>`, and takes the Dense's compute
    policy (the float policy a quantized Dense was quantized from, never the
    quantization policy). The model's output names are kept: where a Dense with
    an inline activation produces an output, the new layer takes the Dense's name
    and the Dense becomes `<dense name>_linear` (see the module docstring). Like
    `keras.models.clone_model`, a compiled model's copy is compiled from its
    compile config (with a fresh optimizer).

    Starting from the same function keeps the outputs: `"relu"` to `"prelu"` with
    `alpha_initializer=0.0`, or to `"leaky_relu"` with `negative_slope=0.0`, gives
    the original's outputs, so a trained ReLU network can be fine-tuned with a
    learnable slope from exactly where it is.

    Args:
        model: A Functional or Sequential `keras.Model`.
        old: An activation name or a list of names: an `activation=` string
            ("relu", "relu6", "silu", "gelu", "sigmoid", ...) or a name from
            `keras_relu.names()` ("prelu", "rrelu"). "silu" and "swish" are one.
        new: A name from `keras_relu.names()` (aliases accepted), except "crelu".
        **kwargs: Arguments for the new layers, as `keras_relu.get` takes them.

    Returns:
        A new, built Functional or Sequential model.

    Raises:
        ValueError: Bad arguments (before any work); a subclassed model (no graph
            to rebuild); nothing in `model` computes `old`; a match that cannot be
            swapped so that it survives saving (inside a subclassed layer, a
            recurrent activation, also under `Bidirectional`; inside a
            TimeDistributed whose wrapped layer is not a Dense, EinsumDense,
            convolution or activation layer), named with its path in the model and
            the reason; a layer that cannot be rebuilt from its own config.

    Example:
    >>> model = keras.applications.ResNet50(weights=None)
    >>> prelu_model = keras_relu.swap_activations(model, "relu", "prelu", alpha_initializer=0.0)
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    old_names = _old_names(old)
    _check_new(new, kwargs)
    if not _is_graph_model(model):
        raise ValueError(
            f"Cannot swap activations in {model.name!r}: {type(model).__name__} is a "
            "subclassed keras.Model, whose layers are called in Python code with no graph "
            "to rebuild. Build it with the functional API or keras.Sequential, or pass "
            "the activation to its constructor."
        )
    swapper = _Swapper(
        old_names, registry.variant(new).name, kwargs, _layer_names(model), _output_layers(model)
    )
    swapped = swapper.model(model, model.name)
    if not swapper.added:
        seen = ", ".join(f"{name} ({count})" for name, count in sorted(swapper.found.items()))
        raise ValueError(
            f"Nothing in {model.name!r} computes {sorted(old_names)}. "
            f"Activations found: {seen or 'none'}."
        )
    swapper.copy_weights(model, swapped)
    return swapped
