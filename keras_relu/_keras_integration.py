"""The one module that touches Keras internals (tested against Keras 3.15).

Keras 3 has no public way to do these six things, so they are done here and
nowhere else, each checked when it is installed so that a Keras release that
changes what they rely on fails at `import keras_relu` with a message, not
later with a wrong model:

1. `build_at_init`: Keras marks stateless layers built at construction through
   the private `Layer._build_at_init`; its layer contract test expects it.
2. Activation strings: `keras.activations.get("name")` reads only Keras's own
   table `keras.src.activations.ALL_OBJECTS_DICT`, so our stateless functions
   whose names Keras lacks (today only "crelu") are added to it. Keras's own
   names keep meaning Keras's functions.
3. Shapes under `activation="crelu"`: CReLU doubles an axis, but Dense,
   EinsumDense, the convolutions and Activation declare their output width from
   `units`/`filters`/the input. Their `compute_output_shape` is wrapped so that with
   the `crelu` function (string or function) the last axis doubles, and with a
   `keras_relu.layers.CReLU` instance the CReLU layer's own shape applies: the
   declared shape, the summary, the runtime shape and the next layer agree.
   Every other layer (recurrent cells, whose state has `units` width, keras-hub's
   blocks, users' layers) cannot know its width changed, so `Layer.__setattr__` is
   wrapped to refuse the `crelu` function as any `*activation` attribute of such a
   layer, at construction, with an error naming `keras_relu.layers.CReLU`. Channels-
   first convolutions refuse it too (it would double the width, not the channels).
4. `backend_seed`: a seed (an int, None or a `SeedGenerator`) as the backend's own
   random-number API takes it (TensorFlow's int32 pair, JAX's key, a torch
   `Generator`), through Keras's private seed handling, so that a `SeedGenerator`
   advances as it does in `keras.random` (RReLU draws random bits, which
   `keras.random` has no function for). `training_call`: whether the layer call in
   progress is a training one (Keras's private call context: a function given to
   `activation=` is not passed `training`).
5. Initializer strings: `keras.initializers.get("name")` reads only Keras's own
   table `keras.src.initializers.ALL_OBJECTS_DICT`, so our initializers' names
   ("randomized_asymmetric") are added to it as the activation names are.
6. `is_functional`, `sublayers` and `activation_op_name`, for
   `keras_relu.swap_activations`: whether a model has a graph of layer calls to
   rebuild (a Functional model, subclasses such as keras-hub's backbones
   included), every layer nested inside a layer (to find activations a subclassed
   layer would rebuild from its config), and which activation a `keras.ops` call
   in a functional graph (`x = keras.ops.relu(x)`) computes.
7. `keras_mask` and `recording_calls`, for `keras_relu.diagnostics`: the Keras mask
   a tensor carries (`backend.get_keras_mask`, not exported), and the inputs and
   outputs of given layers while a block runs: the only way to reach an activation
   layer called inside a subclassed layer's `call`. `Layer.__call__` is wrapped for
   the duration of a `with` block and restored in a `finally`.
8. `graph_nodes` and `optimizer_slots`, for `keras_relu.diagnostics.revive_dead_units`:
   a model's own layer calls with their tensors (a layer's `input`/`output` fail once
   a probe has called it again), and the optimizer variables that belong to each model
   variable (Adam's moments, SGD's momentum: Keras keeps them in per-optimizer lists
   indexed by the optimizer's private variable index), with what each list holds
   (`_STATE_ROLES`: Keras's private attribute names, optimizer by optimizer).
9. `compute_loss`, for `diagnostics.GradientMonitor`: a model's compiled loss as
   `train_step` computes it, through `Trainer._compute_loss`, which passes
   `training` only to a `compute_loss` override that accepts it (added in Keras 3.3).
10. `Layer.add_weight` hands the layer and the weight's name to a function of ours
   before Keras draws the weight, so that `RandomizedAsymmetric` learns where the
   output units of that kernel lie (Keras gives an initializer only the shape; its
   `EinsumDense` does the same for `VarianceScaling`'s `input_axes`/`output_axes`).
   Every other initializer passes through unchanged.
11. `learning_rate_setting`, for `diagnostics.ReduceLROnHighUpdateRatio`: what an
   optimizer was given as its learning rate (its variable, or the schedule object:
   `optimizer.learning_rate` evaluates a schedule, and only `_learning_rate` holds it).
"""

import contextlib
import dataclasses
import functools
import importlib
import inspect

import keras
import numpy as np

# Layers that declare the doubled width CReLU gives them: (module, class).
_SHAPE_LAYERS = (
    ("keras.src.layers.core.dense", "Dense"),
    ("keras.src.layers.core.einsum_dense", "EinsumDense"),
    ("keras.src.layers.convolutional.base_conv", "BaseConv"),
    ("keras.src.layers.convolutional.base_conv_transpose", "BaseConvTranspose"),
    ("keras.src.layers.convolutional.base_depthwise_conv", "BaseDepthwiseConv"),
    ("keras.src.layers.convolutional.base_separable_conv", "BaseSeparableConv"),
    ("keras.src.layers.activations.activation", "Activation"),
)
# Layers whose refusal gives a specific reason; every other layer gets the general one.
_FIXED_WIDTH_LAYERS = (
    ("keras.src.layers.rnn.simple_rnn", "SimpleRNNCell"),
    ("keras.src.layers.rnn.lstm", "LSTMCell"),
    ("keras.src.layers.rnn.gru", "GRUCell"),
    ("keras.src.layers.rnn.conv_lstm", "ConvLSTMCell"),
)
_PATCHED = "_keras_relu_patched"

# Set by `install`: the CReLU function and layer class (this module imports neither, so
# that `activations` and `layers` can import it: the package's lowest layer).
_crelu_function = None
_crelu_layer = None
# Set by `install`: `(layer, weight name, initializer) -> initializer`, or None.
_weight_initializer = None
_shape_classes = ()
_fixed_width_classes = ()


class KerasIntegrationError(ImportError):
    """This Keras release no longer has what `keras_relu` hooks into."""


def _fail(what):
    raise KerasIntegrationError(
        f"keras_relu cannot integrate with Keras {keras.__version__}: {what}. "
        "keras_relu is tested with Keras 3.15; please report this with your Keras version."
    )


def build_at_init(layer):
    """Marks a layer without `build` built now, as Keras's stateless layers are."""
    layer._build_at_init()


def backend_seed(seed):
    """`seed` as the backend's random functions take it, drawn as `keras.random` draws.

    TensorFlow: an int32 tensor of 2 (stateless ops, XLA included); JAX: a key; torch:
    a `torch.Generator` (None on the "meta" device, where Keras traces shapes).
    """
    from keras.src.random.seed_generator import draw_seed

    backend = keras.config.backend()
    if backend == "tensorflow":
        from keras.src.backend.tensorflow.random import _cast_seed

        return _cast_seed(draw_seed(seed))
    if backend == "jax":
        from keras.src.backend.jax.random import jax_draw_seed

        return jax_draw_seed(seed)
    if backend == "torch":
        from keras.src.backend.torch.random import torch_seed_generator

        return torch_seed_generator(seed)
    return draw_seed(seed)


def training_call():
    """True inside a layer call made with `training=True` (as `fit`'s train step makes).

    Keras resolves `training` once for the outermost call and keeps it in a call
    context that nested calls read; activation functions are not passed it. A flag that
    is not a Python bool (a tensor) counts as False: the forms are the same function.
    """
    from keras.src.backend.common import global_state

    context = global_state.get_global_attribute("current_call_ctx")
    training = None if context is None else context.get_value("training", False)
    return isinstance(training, bool) and training


def is_functional(model):
    """Whether `model` is a Functional model: a graph of layer calls on `keras.Input`s."""
    return isinstance(model, _load_class("keras.src.models.functional", "Functional"))


def sublayers(layer, recursive=True):
    """Every layer tracked inside `layer` (only its direct children if not `recursive`),
    `layer` itself excluded."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))


def keras_mask(tensor):
    """The Keras mask `tensor` carries (a symbolic or real tensor), or None."""
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor)


@contextlib.contextmanager
def recording_calls(layers):
    """Records every call of `layers` made through `Layer.__call__` inside the block.

    Yields a list that fills with `(layer, args, kwargs, outputs)` in call order.
    Other layers' calls pass through unchanged. A layer whose caller runs its
    `call` directly (TimeDistributed does) is not recorded.
    """
    targets = {id(layer) for layer in layers}
    calls = []
    original = keras.layers.Layer.__call__

    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        outputs = original(self, *args, **kwargs)
        if id(self) in targets:
            calls.append((self, args, kwargs, outputs))
        return outputs

    keras.layers.Layer.__call__ = __call__
    try:
        yield calls
    finally:
        keras.layers.Layer.__call__ = original


# The operations `keras.ops.relu(x)` and its kind leave in a functional graph, by
# the registry name of what they compute.
_ACTIVATION_OPS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Silu": "swish",
    "Gelu": "gelu",
    "Elu": "elu",
    "Selu": "selu",
    "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid",
    "Softmax": "softmax",
}


def activation_op_name(operation):
    """The name of the activation a graph operation computes, or None."""
    for class_name, name in _ACTIVATION_OPS.items():
        if type(operation) is _load_class("keras.src.ops.nn", class_name):
            return name
    return None


def graph_nodes(model):
    """The layer calls of a Functional or Sequential model's own graph, inputs first.

    Returns:
        `[(layer, input_tensors, output_tensors)]`, the tensors as flat lists of
        KerasTensors; input placeholders are left out. Calls that other models (a
        probe replaying the same layers) added to the layers are not included.
    """
    functional = model._functional if isinstance(model, keras.Sequential) else model
    if not is_functional(functional):
        raise ValueError(
            "The model needs a graph of layer calls: a Functional model, or a Sequential "
            f"model built on a `keras.Input`. Received: {model!r}"
        )
    calls = []
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            calls.append((node.operation, list(node.input_tensors), list(node.output_tensors)))
    return calls


# What each per-variable state list of Keras's optimizers holds, by attribute name, for
# `revive_dead_units` (docs/dying-relu/cures.md lists them): "first" a running mean of the
# gradient or of the update (momentum), "second" a running scale (squared gradients, an
# infinity norm, accumulated squared updates), "rows"/"columns" Adafactor's factored second
# moment (means over the last and the second-last axis), "iterate" a copy of the weights the
# update steps from (ScheduleFreeAdamW's z), "ftrl_linear" FTRL's z, from which every step
# recomputes the weights. Subclasses inherit their base's entry (AdamW is an Adam).
_STATE_ROLES = {
    "SGD": {"momentums": "first"},
    "Adam": {"_momentums": "first", "_velocities": "second", "_velocity_hats": "second"},
    "Adamax": {"_m": "first", "_u": "second"},
    "Nadam": {"_momentums": "first", "_velocities": "second"},
    "Lion": {"_momentums": "first"},
    "RMSprop": {"_momentums": "first", "_average_gradients": "first", "_velocities": "second"},
    "Adagrad": {"_accumulators": "second"},
    "Adadelta": {"_accumulated_grads": "second", "_accumulated_delta_vars": "second"},
    "Adafactor": {"_r": "rows", "_c": "columns", "_v": "second"},
    "Lamb": {"_momentums": "first", "_velocities": "second"},
    "Ftrl": {"_accumulators": "second", "_linears": "ftrl_linear"},
    "Muon": {"momentums": "first", "adam_velocities": "second"},
    "ScheduleFreeAdamW": {"_momentums": "iterate", "_velocities": "second"},
}
# Every optimizer's: the EMA of the weights (`use_ema`), gradient accumulators.
_BASE_STATE_ROLES = {
    "_model_variables_moving_average": "average",
    "_accumulated_gradients": "first",
}


@dataclasses.dataclass(frozen=True)
class OptimizerSlot:
    """One optimizer variable of one model variable: its list's name, its role in
    `_STATE_ROLES` (None for a list this module does not know), and the optimizer
    that owns it (the inner one of a `LossScaleOptimizer` or `MultiOptimizer`)."""

    kind: str
    role: str | None
    variable: keras.Variable
    optimizer: keras.optimizers.Optimizer


def inner_optimizers(optimizer):
    """The optimizers that update variables: the inner one of a `LossScaleOptimizer`,
    each of a `MultiOptimizer`, else `optimizer` itself."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return [inner for each in optimizer.optimizers for inner in inner_optimizers(each)]
    return [optimizer]


def optimizer_state_roles(optimizer):
    """`{list name: role}` for a Keras optimizer's per-variable state (see `_STATE_ROLES`),
    or None for an optimizer that is not Keras's nor a subclass of one."""
    for cls in type(optimizer).__mro__:
        if cls.__module__.startswith("keras.") and cls.__name__ in _STATE_ROLES:
            return {**_BASE_STATE_ROLES, **_STATE_ROLES[cls.__name__]}
    return None


def optimizer_slots(optimizer):
    """The optimizer variables of each model variable `optimizer` updates.

    Keras optimizers keep one list per kind of state (Adam: `_momentums`,
    `_velocities`; SGD: `momentums`), indexed as the optimizer's tracked variables.
    Each such list is found by its length and its entries (the optimizer's own
    `[iterations, learning_rate]` list is not one); a `LossScaleOptimizer` or a
    `MultiOptimizer` is looked into.

    Returns:
        `{id(model_variable): [OptimizerSlot]}`, empty for an optimizer not built yet.
        An Adafactor's factored moments (`_r`, `_c`) have the shape of the variable
        without its last or second-last axis; its scalar placeholders (for variables
        of rank < 2) are left out.

    Raises:
        ValueError: For any other per-variable state whose shape is not its
            variable's: its entries cannot be mapped.
    """
    slots = {}
    for inner in inner_optimizers(optimizer):
        if not getattr(inner, "built", False):
            continue
        roles = optimizer_state_roles(inner) or dict(_BASE_STATE_ROLES)
        tracked = list(inner._trainable_variables)
        own = {id(inner._iterations), id(getattr(inner, "_learning_rate", None))}
        for variable in tracked:
            slots.setdefault(id(variable), [])
        for kind, values in vars(inner).items():
            if kind in ("_trainable_variables", "_variables") or not isinstance(
                values, (list, tuple)
            ):
                continue
            if len(values) != len(tracked) or not any(
                isinstance(v, keras.Variable) for v in values
            ):
                continue
            if any(id(v) in own for v in values if v is not None):
                continue  # The optimizer's own variables, not per model variable.
            role = roles.get(kind)
            for variable, slot in zip(tracked, values, strict=True):
                if slot is None:  # Variables the optimizer overwrites with their gradient.
                    continue
                shape, expected = tuple(slot.shape), tuple(variable.shape)
                if role in ("rows", "columns"):
                    if len(expected) < 2:
                        continue  # A scalar placeholder: not factored.
                    expected = expected[:-1] if role == "rows" else expected[:-2] + expected[-1:]
                if shape != expected:
                    raise ValueError(
                        f"{type(inner).__name__} keeps {kind!r} in another shape than its "
                        f"variables ({shape} for {variable.path} of shape "
                        f"{tuple(variable.shape)}): its entries cannot be reset per unit."
                    )
                slots[id(variable)].append(OptimizerSlot(kind, role, slot, inner))
    return slots


def fresh_optimizer_slots(optimizer, variables):
    """`optimizer_slots` of a new optimizer of the same config built on `variables`:
    the values each optimizer variable starts from (zeros for Adam's moments,
    `initial_accumulator_value` for Adagrad's accumulators...). `optimizer` is one
    of `inner_optimizers`."""
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(list(variables))
    return optimizer_slots(fresh)


def ftrl_linear(optimizer, weights, accumulator):
    """The linear accumulator z from which Keras's `Ftrl` computes `weights` at its
    next step, given the squared-gradient accumulator n (both NumPy arrays):

        w = (clip(z, -l1, l1) - z) / q,  q = n^(-p) / lr + 2 (l2 + beta / (2 lr))
        so z = -(w q + l1 sign(w))
    """
    learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    l1 = optimizer.l1_regularization_strength
    l2 = optimizer.l2_regularization_strength + optimizer.beta / (2.0 * learning_rate)
    quadratic = accumulator ** (-optimizer.learning_rate_power) / learning_rate + 2.0 * l2
    return -(weights * quadratic + l1 * np.sign(weights))


def learning_rate_setting(optimizer):
    """The learning rate `optimizer` holds (a `LossScaleOptimizer` is looked into): its
    `keras.Variable` for a constant rate, else the `LearningRateSchedule` or callable."""
    return getattr(optimizer, "inner_optimizer", optimizer)._learning_rate


def compute_loss(model, x, y, y_pred, sample_weight, training):
    """`model.compute_loss(...)` as the backends' `train_step` calls it."""
    return model._compute_loss(
        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
    )


def _check_compute_loss():
    trainer = _load_class("keras.src.trainers.trainer", "Trainer")
    if not callable(getattr(trainer, "_compute_loss", None)):
        _fail("Trainer._compute_loss is gone")


def _check_model_introspection():
    if not isinstance(_load_class("keras.src.models.functional", "Functional"), type):
        _fail("keras.src.models.functional.Functional is not a class")
    for class_name in _ACTIVATION_OPS:
        _load_class("keras.src.ops.nn", class_name)
    if not callable(getattr(keras.layers.Layer, "_flatten_layers", None)):
        _fail("Layer._flatten_layers is gone")
    if "__call__" not in vars(keras.layers.Layer):
        _fail("keras.layers.Layer no longer defines __call__")
    try:
        from keras.src.backend import get_keras_mask  # noqa: F401
    except ImportError:
        _fail("keras.src.backend.get_keras_mask is gone")
    # Named: Keras's automatic names ("dense", "dense_1"...) are the user's to take.
    model = keras.Sequential(
        [keras.Input((2,), name="keras_relu_check_input"), keras.layers.Dense(1, name="check")],
        name="keras_relu_check",
    )
    if [type(layer) for layer, _, _ in graph_nodes(model)] != [keras.layers.Dense]:
        _fail("a Functional model's _nodes_by_depth no longer lists its layer calls")
    optimizer = keras.optimizers.Adam(name="keras_relu_check_adam")
    optimizer.build(model.trainable_variables)
    slots = optimizer_slots(optimizer)[id(model.trainable_variables[0])]
    kinds = [(slot.kind, slot.role) for slot in slots]
    if sorted(kinds) != [("_momentums", "first"), ("_velocities", "second")]:
        _fail(f"Adam's per-variable state is no longer found (found {kinds})")


def _check_learning_rate_setting():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    constant = keras.optimizers.SGD(1e-3, name="keras_relu_check_sgd")
    scheduled = keras.optimizers.SGD(schedule, name="keras_relu_check_sgd")
    if not isinstance(learning_rate_setting(constant), keras.Variable) or (
        learning_rate_setting(scheduled) is not schedule
    ):
        _fail("an optimizer's learning rate is no longer held in `_learning_rate`")


def _check_random_and_call_context():
    try:
        from keras.src.backend.common import global_state  # noqa: F401
        from keras.src.layers.layer import CallContext
        from keras.src.random.seed_generator import draw_seed  # noqa: F401

        CallContext.get_value  # noqa: B018
        backend = keras.config.backend()
        if backend == "tensorflow":
            from keras.src.backend.tensorflow.random import _cast_seed  # noqa: F401
        elif backend == "jax":
            from keras.src.backend.jax.random import jax_draw_seed  # noqa: F401
        elif backend == "torch":
            from keras.src.backend.torch.random import torch_seed_generator  # noqa: F401
    except (ImportError, AttributeError) as error:
        _fail(f"Keras's seed handling or layer call context moved ({error})")


def _load_class(module_name, class_name):
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        _fail(f"{module_name}.{class_name} not found")


def _crelu_misuse(layer, reason):
    return ValueError(
        f"{type(layer).__name__} cannot take activation='crelu': {reason}. CReLU "
        "doubles its input's channel axis: put a `keras_relu.layers.CReLU(axis=...)` "
        "layer where what follows expects the doubled width."
    )


def _check_activation_attribute(layer, name, value):
    """Refuses CReLU where the doubled width would not be declared.

    The crelu function (what `activation="crelu"` resolves to) is refused by every layer
    but the shape layers. A `CReLU` layer instance is refused only by recurrent cells: in
    a user's own layer, `self.activation = CReLU()` may be a sublayer used knowingly.
    """
    if not name.endswith("activation"):
        return
    is_function = value is _crelu_function
    if not (is_function or isinstance(value, _crelu_layer)):
        return
    if isinstance(layer, _fixed_width_classes):
        raise _crelu_misuse(layer, "its output and state width is fixed by `units`")
    if is_function and not isinstance(layer, _shape_classes):
        raise _crelu_misuse(
            layer,
            "it sizes what follows its activation itself, so the doubled width would "
            "only show as a shape error when it is called (only Dense, EinsumDense, the "
            "convolutions and Activation declare it)",
        )


def _wrap_setattr():
    layer_class = keras.layers.Layer
    if getattr(layer_class.__setattr__, _PATCHED, False):
        return
    if "__setattr__" not in vars(layer_class):
        _fail("keras.layers.Layer no longer defines __setattr__")
    original = layer_class.__setattr__

    @functools.wraps(original)
    def __setattr__(self, name, value):
        _check_activation_attribute(self, name, value)
        original(self, name, value)

    setattr(__setattr__, _PATCHED, True)
    layer_class.__setattr__ = __setattr__


def _wrap_add_weight():
    layer_class = keras.layers.Layer
    if getattr(layer_class.add_weight, _PATCHED, False):
        return
    original = vars(layer_class).get("add_weight")
    if original is None or not {"initializer", "name"} <= set(
        inspect.signature(original).parameters
    ):
        _fail("keras.layers.Layer.add_weight no longer takes `initializer` and `name`")

    @functools.wraps(original)
    def add_weight(self, *args, **kwargs):
        if _weight_initializer is not None:
            name = kwargs.get("name")
            if len(args) > 1:  # Keras 2's positional `(shape, initializer, ...)`.
                args = (args[0], _weight_initializer(self, name, args[1]), *args[2:])
            elif kwargs.get("initializer") is not None:
                kwargs["initializer"] = _weight_initializer(self, name, kwargs["initializer"])
        return original(self, *args, **kwargs)

    setattr(add_weight, _PATCHED, True)
    layer_class.add_weight = add_weight


def _wrap_init(cls):
    """Channels-first convolutions: CReLU would double the width, not the channels."""
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if getattr(self, "activation", None) is _crelu_function and (
            getattr(self, "data_format", "channels_last") == "channels_first"
        ):
            raise _crelu_misuse(
                self, "with data_format='channels_first' it would double the last spatial axis"
            )

    # Keras's Operation.__new__ reads the argspec, which ignores __wrapped__.
    __init__.__signature__ = inspect.signature(original)
    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def _wrap_compute_output_shape(cls):
    if "compute_output_shape" not in vars(cls):
        _fail(f"{cls.__name__} no longer defines compute_output_shape")
    original = cls.compute_output_shape

    @functools.wraps(original)
    def compute_output_shape(self, *args, **kwargs):
        shape = original(self, *args, **kwargs)
        activation = getattr(self, "activation", None)
        if isinstance(activation, _crelu_layer):  # Its own axis, checked against the rank.
            return activation.compute_output_shape(shape)
        if activation is not _crelu_function:
            return shape
        channels = shape[-1]
        return (*shape[:-1], None if channels is None else 2 * channels)

    setattr(compute_output_shape, _PATCHED, True)
    cls.compute_output_shape = compute_output_shape


def _register_activation_names(functions_by_name):
    from keras.src import activations as keras_activations

    table = getattr(keras_activations, "ALL_OBJECTS_DICT", None)
    if not isinstance(table, dict):
        _fail("keras.src.activations.ALL_OBJECTS_DICT is gone")
    for name, function in functions_by_name.items():
        if table.setdefault(name, function) is not function:
            continue  # Keras's own name: it keeps meaning Keras's function.
        if keras.activations.get(name) is not function:
            _fail("keras.activations.get no longer reads ALL_OBJECTS_DICT")


def _register_initializer_names(classes_by_name):
    from keras.src import initializers as keras_initializers

    table = getattr(keras_initializers, "ALL_OBJECTS_DICT", None)
    if not isinstance(table, dict):
        _fail("keras.src.initializers.ALL_OBJECTS_DICT is gone")
    for name, cls in classes_by_name.items():
        if table.setdefault(name, cls) is not cls:
            _fail(f"Keras now has an initializer named {name!r}")
        if type(keras.initializers.get(name)) is not cls:
            _fail("keras.initializers.get no longer reads ALL_OBJECTS_DICT")


def install(
    functions_by_name,
    crelu_function,
    crelu_layer,
    initializers_by_name=None,
    weight_initializer=None,
):
    """Makes `activation=<name>` work for each name Keras lacks, and CReLU's shapes
    declared or refused (see the module docstring), and `kernel_initializer=<name>`
    for our initializers. Idempotent.

    Args:
        functions_by_name: `{name: function}` of the stateless activations.
        crelu_function: `keras_relu.activations.crelu`.
        crelu_layer: `keras_relu.layers.CReLU`.
        initializers_by_name: `{name: initializer class}`. Default: None (none).
        weight_initializer: `(layer, weight name, initializer) -> initializer`, what
            `Layer.add_weight` draws with. Default: None (the initializer as given).
    """
    global _crelu_function, _crelu_layer, _shape_classes, _fixed_width_classes
    global _weight_initializer
    _crelu_function, _crelu_layer = crelu_function, crelu_layer
    if weight_initializer is not None:  # A later call without one keeps it.
        _weight_initializer = weight_initializer
    _register_activation_names(functions_by_name)
    _register_initializer_names(initializers_by_name or {})
    _check_random_and_call_context()
    _check_model_introspection()
    _check_compute_loss()
    _check_learning_rate_setting()
    _shape_classes = tuple(_load_class(*where) for where in _SHAPE_LAYERS)
    _fixed_width_classes = tuple(_load_class(*where) for where in _FIXED_WIDTH_LAYERS)
    for cls in _shape_classes:
        if not getattr(cls.__init__, _PATCHED, False):
            _wrap_init(cls)
            _wrap_compute_output_shape(cls)
    _wrap_setattr()
    _wrap_add_weight()
