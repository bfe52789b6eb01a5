"""`keras_relu.swap_activations`: what matches, weights kept, saving, refusals."""

import collections
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu

SHAPE = (32, 32, 3)  # The smallest input keras.applications accept: cheap to build.


def _x(shape=SHAPE, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


def _run(model, x):
    return ops.convert_to_numpy(model(x))


def _weights(model):
    """A multiset of (path, value bytes): what copying must preserve."""
    return collections.Counter((w.path, ops.convert_to_numpy(w).tobytes()) for w in model.weights)


def _count(model, predicate):
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _count(layer, predicate)
        total += bool(predicate(layer))
    return total


def _is(cls):
    return lambda layer: type(layer) is cls


def _inline(function):
    return lambda layer: getattr(layer, "activation", None) is function


def _activation_layer(function):
    return lambda layer: type(layer) is keras.layers.Activation and layer.activation is function


def _assert_copied(original, swapped):
    missing = _weights(original) - _weights(swapped)
    assert not missing, f"{len(missing)} weights not copied, e.g. {next(iter(missing))[0]}"
    assert not {id(w) for w in original.weights} & {id(w) for w in swapped.weights}


def test_resnet50_starts_from_the_same_function():
    resnet50 = keras.applications.ResNet50(
        weights=None, input_shape=SHAPE, classes=10, classifier_activation=None
    )
    before = _weights(resnet50)
    assert _count(resnet50, _activation_layer(keras.activations.relu)) == 49
    swapped = keras_relu.swap_activations(resnet50, "relu", "prelu", alpha_initializer=0.0)
    assert _count(swapped, _is(keras_relu.PReLU)) == 49
    assert _count(swapped, _activation_layer(keras.activations.relu)) == 0
    _assert_copied(resnet50, swapped)
    assert _weights(resnet50) == before
    x = _x()
    np.testing.assert_allclose(_run(swapped, x), _run(resnet50, x), rtol=1e-5, atol=1e-5)


def test_mobilenetv2_relu6_layers():
    model = keras.applications.MobileNetV2(weights=None, input_shape=SHAPE, classes=10)
    relu6 = lambda layer: type(layer) is keras.layers.ReLU and layer.max_value == 6  # noqa: E731
    assert _count(model, relu6) == 35
    swapped = keras_relu.swap_activations(model, "relu6", "elu", alpha=0.5)
    elus = [layer for layer in swapped.layers if type(layer) is keras_relu.ELU]
    assert len(elus) == 35 and all(layer.alpha == 0.5 for layer in elus)
    assert _count(swapped, relu6) == 0
    # Each new layer takes the name and place of the one it replaces.
    assert {layer.name for layer in model.layers} == {layer.name for layer in swapped.layers}
    _assert_copied(model, swapped)


def test_efficientnet_swaps_silu_and_keeps_the_sigmoid_gates():
    model = keras.applications.EfficientNetB0(weights=None, input_shape=SHAPE, classes=10)
    assert _count(model, _activation_layer(keras.activations.silu)) == 33
    assert _count(model, _inline(keras.activations.silu)) == 16 + 33  # Activation layers too.
    assert _count(model, _inline(keras.activations.sigmoid)) == 16
    swapped = keras_relu.swap_activations(model, "silu", "gelu")
    assert _count(swapped, _is(keras_relu.GELU)) == 33 + 16
    assert _count(swapped, _inline(keras.activations.silu)) == 0
    assert _count(swapped, _inline(keras.activations.sigmoid)) == 16
    assert _count(swapped, _inline(keras.activations.softmax)) == 1
    _assert_copied(model, swapped)


def test_densenet121_every_relu():
    model = keras.applications.DenseNet121(weights=None, input_shape=SHAPE, classes=10)
    relus = _count(model, _activation_layer(keras.activations.relu))
    assert relus > 100
    swapped = keras_relu.swap_activations(model, "relu", "swish", learn_beta=True)
    assert _count(swapped, _is(keras_relu.Swish)) == relus
    assert len(swapped.weights) == len(model.weights) + relus  # One learned beta each.
    _assert_copied(model, swapped)


def test_keras_hub_backbone():
    import keras_hub

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(16, 16, 3),
    )
    swapped = keras_relu.swap_activations(backbone, "relu", "prelu", alpha_initializer=0.0)
    assert _count(swapped, _is(keras_relu.PReLU)) == 5
    _assert_copied(backbone, swapped)
    x = _x((16, 16, 3))
    np.testing.assert_allclose(_run(swapped, x), _run(backbone, x), rtol=1e-5, atol=1e-5)


def test_keras_hub_transformer_block_is_refused():
    import keras_hub

    inputs = keras.Input((4, 8))
    block = keras_hub.layers.TransformerEncoder(16, 2, activation="gelu", name="block")
    model = keras.Model(inputs, block(inputs))
    with pytest.raises(ValueError, match=r"/block: TransformerEncoder applies 'gelu'.*saving"):
        keras_relu.swap_activations(model, "gelu", "relu")


def _nested_model():
    """Nested Sequential and Functional models, a shared Dense and a keras.ops call."""
    inner_sequential = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6, activation="relu"), keras.layers.ReLU()],
        name="inner_sequential",
    )
    inner_inputs = keras.Input((6,))
    inner_functional = keras.Model(
        inner_inputs, keras.layers.Activation("relu")(inner_inputs), name="inner_functional"
    )
    shared = keras.layers.Dense(6, activation="relu", name="shared")
    inputs = keras.Input((6,))
    x = shared(inner_sequential(inputs))
    x = shared(inner_functional(x))
    x = keras.ops.relu(keras.layers.Dense(6, name="before_op")(x))
    outputs = keras.layers.Dense(2, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="outer")


def test_nested_models_shared_layers_and_ops():
    model = _nested_model()
    swapped = keras_relu.swap_activations(model, "relu", "prelu", alpha_initializer=0.0)
    x = _x((6,), batch=4)
    np.testing.assert_allclose(_run(swapped, x), _run(model, x), rtol=1e-6, atol=1e-6)
    prelus = [w for w in swapped.weights if w.path.endswith("alpha")]
    # Dense and ReLU in the Sequential, Activation in the Functional, the shared Dense's one
    # PReLU (shared as the Dense is), the keras.ops.relu call.
    assert len(prelus) == 5
    inner = swapped.get_layer("inner_sequential")
    assert type(inner) is keras.Sequential
    assert [type(layer) for layer in inner.layers] == [
        keras.layers.Dense,
        keras_relu.PReLU,
        keras_relu.PReLU,
    ]
    assert swapped.get_layer("shared").activation is keras.activations.linear
    _assert_copied(model, swapped)


def test_sequential_model_stays_sequential():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    swapped = keras_relu.swap_activations(model, "relu", "leaky_relu", negative_slope=0.0)
    assert type(swapped) is keras.Sequential
    assert [type(layer).__name__ for layer in swapped.layers] == [
        "Conv2D",
        "LeakyReLU",
        "Flatten",
        "Dense",
        "LeakyReLU",
        "Dense",
    ]
    x = _x((8, 8, 3))
    np.testing.assert_allclose(_run(swapped, x), _run(model, x), rtol=1e-6, atol=1e-6)


# One place of each kind, and the name it computes.
PLACES = {
    "Activation('relu')": (lambda: keras.layers.Activation("relu"), "relu"),
    "Activation('swish') is silu": (lambda: keras.layers.Activation("swish"), "silu"),
    "Activation(function)": (lambda: keras.layers.Activation(keras.activations.relu), "relu"),
    "keras ReLU()": (lambda: keras.layers.ReLU(), "relu"),
    "keras ReLU(6.0)": (lambda: keras.layers.ReLU(6.0), "relu6"),
    "keras ReLU(max_value=6)": (lambda: keras.layers.ReLU(max_value=6), "relu6"),
    "keras ReLU(negative_slope=0.1)": (lambda: keras.layers.ReLU(negative_slope=0.1), "lrelu"),
    "keras LeakyReLU": (lambda: keras.layers.LeakyReLU(), "leaky_relu"),
    "keras ELU": (lambda: keras.layers.ELU(), "elu"),
    "keras PReLU": (lambda: keras.layers.PReLU(), "prelu"),
    "our ReLU6": (lambda: keras_relu.ReLU6(), "relu6"),
    "our RReLU": (lambda: keras_relu.RReLU(seed=1), "rrelu"),
    "our SiLU": (lambda: keras_relu.SiLU(), "swish"),
    "Dense(activation='gelu')": (lambda: keras.layers.Dense(4, activation="gelu"), "gelu"),
    "Conv1D(activation='selu')": (lambda: keras.layers.Conv1D(4, 1, activation="selu"), "selu"),
    "keras_relu.activations.elu(x)": (lambda: keras_relu.activations.elu, "elu"),
    "TimeDistributed(Dense(activation='relu'))": (
        lambda: keras.layers.TimeDistributed(keras.layers.Dense(4, activation="relu")),
        "relu",
    ),
    "TimeDistributed(ReLU())": (lambda: keras.layers.TimeDistributed(keras.layers.ReLU()), "relu"),
    "EinsumDense(activation='silu')": (
        lambda: keras.layers.EinsumDense("bti,ij->btj", (3, 4), activation="silu"),
        "swish",
    ),
}


@pytest.mark.parametrize("place", PLACES)
def test_what_matches(place):
    make, name = PLACES[place]
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, make()(inputs))
    swapped = keras_relu.swap_activations(model, name, "gelu", approximate=True)
    assert _count(swapped, _is(keras_relu.GELU)) == 1
    other = "tanh" if name != "tanh" else "relu"
    with pytest.raises(ValueError, match="Nothing in .* computes"):
        keras_relu.swap_activations(model, other, "gelu")


def test_dtype_policy_and_trainable_kept():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(
        4, activation="relu", dtype="mixed_float16", trainable=False, name="dense"
    )
    model = keras.Model(inputs, keras.layers.Dense(2)(dense(inputs)))
    swapped = keras_relu.swap_activations(model, "relu", "prelu")
    prelu = swapped.get_layer("dense_prelu")
    assert type(prelu) is keras_relu.PReLU
    assert prelu.dtype_policy.name == "mixed_float16" and not prelu.trainable


def test_training_the_copy_leaves_the_original_alone():
    model = _nested_model()
    before = _weights(model)
    swapped = keras_relu.swap_activations(model, "relu", "prelu")
    swapped.compile(keras.optimizers.SGD(0.5), "mse")
    x = _x((6,), batch=8)
    swapped.fit(x, np.ones((8, 2), "float32"), epochs=2, verbose=0)
    assert _weights(model) == before
    assert _weights(swapped) != _weights(keras_relu.swap_activations(model, "relu", "prelu"))


def test_saves_and_loads_in_a_fresh_process(tmp_path):
    cnn = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="silu"), keras.layers.ReLU()]
    )
    models = {
        "nested": (keras_relu.swap_activations(_nested_model(), "relu", "rrelu", seed=3), (6,)),
        "cnn": (keras_relu.swap_activations(cnn, ["silu", "relu"], "prelu"), (8, 8, 3)),
    }
    expected = {}
    for name, (model, shape) in models.items():
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", _x(shape))
        expected[name] = model.predict(_x(shape), verbose=0)
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import keras_relu
        for name in {list(models)!r}:
            model = keras.saving.load_model({str(tmp_path)!r} + f"/{{name}}.keras", safe_mode=True)
            x = np.load({str(tmp_path)!r} + f"/{{name}}_x.npy")
            np.save({str(tmp_path)!r} + f"/{{name}}_out.npy", model.predict(x, verbose=0))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    for name, outputs in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_out.npy"), outputs, rtol=1e-5)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2, activation="relu")

    def call(self, inputs):
        return self.dense(inputs)


class _Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(2, activation="relu", name="inner")

    def call(self, inputs):
        return self.inner(inputs)


def _with(layer, shape=(3,)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs), name="m")


@pytest.mark.parametrize(
    "model, old, new, kwargs, message",
    [
        (lambda: _with(keras.layers.ReLU()), "relu", "crelu", {}, "cannot be 'crelu'"),
        (lambda: _with(keras_relu.CReLU()), "crelu", "relu", {}, "cannot contain 'crelu'"),
        (lambda: _Subclassed(), "relu", "prelu", {}, "subclassed keras.Model"),
        (
            lambda: _with(_Block(name="b")),
            "relu",
            "elu",
            {},
            "m/b: _Block computes 'relu'.*'inner'",
        ),
        (
            lambda: _with(keras.layers.LSTM(2, activation="relu"), (3, 2)),
            "relu",
            "elu",
            {},
            "LSTM applies 'relu'.*recurrence",
        ),
        (
            lambda: _with(
                keras.layers.Bidirectional(keras.layers.LSTM(2, activation="relu")), (3, 2)
            ),
            "relu",
            "elu",
            {},
            "Bidirectional computes 'relu'.*recurrence",
        ),
        (
            lambda: _with(
                keras.layers.TimeDistributed(
                    keras.Sequential([keras.layers.Dense(2, activation="relu", name="inner")])
                ),
                (3, 2),
            ),
            "relu",
            "elu",
            {},
            "TimeDistributed computes 'relu' in its inner layer 'inner'.*out of a TimeDistributed",
        ),
        (
            lambda: _with(keras.layers.TimeDistributed(keras.layers.Dense(2)), (3, 2)),
            "relu",
            "elu",
            {},
            "Nothing in",
        ),
        (lambda: _with(keras.layers.ReLU()), "relu", "nope", {}, "Unknown activation 'nope'"),
        (lambda: _with(keras.layers.ReLU()), "nope", "elu", {}, "`old` must name"),
        (lambda: _with(keras.layers.ReLU()), "linear", "elu", {}, "`old` must name"),
        (lambda: _with(keras.layers.ReLU()), [], "elu", {}, "non-empty list"),
        (lambda: _with(keras.layers.ReLU()), "relu", "elu", {"alpha": -1.0}, "alpha"),
        (lambda: _with(keras.layers.ReLU()), "relu", "elu", {"slope": 1}, "slope"),
        (lambda: _with(keras.layers.ReLU()), "relu", "elu", {"name": "x"}, "`name` cannot"),
        (lambda: _with(keras.layers.ReLU()), "gelu", "elu", {}, r"Activations found: relu \(1\)"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_refusals(model, old, new, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_relu.swap_activations(model(), old, new, **kwargs)


def _save_and_load(model, path):
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


@pytest.mark.parametrize("old, new", [("relu6", "relu6"), ("relu6", "selu")])
def test_mobilenetv2_swapped_saves_and_loads(tmp_path, old, new):
    model = keras.applications.MobileNetV2(weights=None, input_shape=SHAPE, alpha=0.35, classes=4)
    swapped = keras_relu.swap_activations(model, old, new)
    assert _count(swapped, _is(keras_relu.variant(new).layer)) == 35
    loaded = _save_and_load(swapped, tmp_path / "swapped.keras")
    assert _count(loaded, _is(keras_relu.variant(new).layer)) == 35
    x = _x()
    np.testing.assert_allclose(_run(loaded, x), _run(swapped, x), rtol=1e-6, atol=1e-6)
    if new == "relu6":  # The same function: the original's outputs.
        np.testing.assert_allclose(_run(swapped, x), _run(model, x), rtol=1e-6, atol=1e-6)


# `model.quantize()` warns about the layers it skips (the activations): Keras 3.15 once per
# layer, Keras 3.16 once for all of them. Regexes matched from the message's start; a
# filter's fields are split on ':', so they hold none.
QUANTIZE_SKIPPED = (
    "Layer .* does not have a `quantize` method",
    r".*\d+ layer\(s\) were skipped because they do not support quantization",
)


def _ignoring_quantize_skips(test):
    for pattern in QUANTIZE_SKIPPED:
        test = pytest.mark.filterwarnings(f"ignore:{pattern}")(test)
    return test


@_ignoring_quantize_skips
def test_the_quantize_skip_filters_match_both_keras_warnings():
    # Keras 3.15's text (layers/layer.py) and Keras 3.16's (quantizers/report.py): each would
    # fail the test (filterwarnings = error) if its filter did not match.
    warnings.warn(
        "Layer ReLU does not have a `quantize` method implemented.", UserWarning, stacklevel=1
    )
    warnings.warn(
        "`model.quantize()`: 1 layer(s) were skipped because they do not support "
        "quantization (e.g. 'standalone'). Quantized 3 layer(s) in mode 'int8'. Call "
        "`model.quantization_summary()` or inspect the returned `QuantizationReport` for details.",
        UserWarning,
        stacklevel=1,
    )
    with pytest.raises(UserWarning, match="were not skipped"):  # Others still fail tests.
        warnings.warn("2 layer(s) were not skipped", UserWarning, stacklevel=1)


@_ignoring_quantize_skips
@pytest.mark.parametrize("mode", ["int8", "int4", "float8"])
def test_quantized_model_swaps_in_float_activations(tmp_path, mode):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    x = keras.layers.ReLU(name="standalone")(keras.layers.Dense(16, name="linear")(x))
    model = keras.Model(inputs, keras.layers.Dense(4, name="score")(x))
    model.quantize(mode)
    quantized = model.get_layer("hidden").dtype_policy
    assert isinstance(quantized, keras.dtype_policies.QuantizedDTypePolicy)
    swapped = keras_relu.swap_activations(model, "relu", "prelu", alpha_initializer=0.0)
    for name in ("hidden_prelu", "standalone"):
        layer = swapped.get_layer(name)
        assert type(layer) is keras_relu.PReLU
        assert type(layer.dtype_policy) is keras.DTypePolicy
        assert layer.dtype_policy.name == "float32"
    # The quantized layers stay quantized, their quantized weights (int8 kernels, scales,
    # float8's amax histories) copied as they are, whatever order their copies made them in.
    assert swapped.get_layer("hidden").dtype_policy == quantized
    _assert_copied(model, swapped)
    x = _x((8,), batch=5)
    np.testing.assert_allclose(_run(swapped, x), _run(model, x), rtol=1e-6, atol=1e-6)
    loaded = _save_and_load(swapped, tmp_path / "quantized.keras")
    np.testing.assert_allclose(_run(loaded, x), _run(model, x), rtol=1e-6, atol=1e-6)


def _two_outputs():
    inputs = keras.Input((5,), name="features")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    score = keras.layers.Dense(3, activation="relu", name="score")(hidden)
    aux = keras.layers.Dense(2, name="aux")(hidden)
    return keras.Model(inputs, [score, aux])


def test_output_names_are_kept(tmp_path):
    model = _two_outputs()
    swapped = keras_relu.swap_activations(model, "relu", "prelu", alpha_initializer=0.0)
    assert swapped.output_names == ["score", "aux"]
    # Keras names an output after the layer producing it: the new activation takes the
    # name, the Dense that now feeds it becomes "score_linear" with the Dense's weights.
    assert type(swapped.get_layer("score")) is keras_relu.PReLU
    assert swapped.get_layer("score_linear").activation is keras.activations.linear
    assert type(swapped.get_layer("hidden_prelu")) is keras_relu.PReLU  # Not an output.
    for ours, theirs in zip(
        swapped.get_layer("score_linear").weights, model.get_layer("score").weights, strict=True
    ):
        assert ours.path == theirs.path.replace("score/", "score_linear/")
        np.testing.assert_array_equal(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs))
    x = _x((5,), batch=8)
    for ours, theirs in zip(swapped(x), model(x), strict=True):
        np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs))
    swapped.compile(keras.optimizers.SGD(0.1), loss={"score": "mse", "aux": "mae"})
    targets = {"score": np.ones((8, 3), "float32"), "aux": np.zeros((8, 2), "float32")}
    history = swapped.fit(x, targets, epochs=1, verbose=0)
    assert {"score_loss", "aux_loss"} <= set(history.history)
    loaded = _save_and_load(swapped, tmp_path / "two_outputs.keras")
    assert loaded.output_names == ["score", "aux"]
    assert set(loaded.evaluate(x, targets, verbose=0, return_dict=True)) >= {"score_loss"}


def _time_distributed(inner, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.TimeDistributed(inner, name="steps")(inputs))


@pytest.mark.parametrize(
    "inner, shape, channels",
    [
        (lambda: keras.layers.Dense(5, activation="relu"), (4, 6), 5),
        (lambda: keras.layers.Conv2D(3, 3, activation="relu"), (2, 6, 6, 2), 3),
    ],
    ids=["Dense", "Conv2D"],
)
def test_time_distributed_activation_follows_the_wrapper(tmp_path, inner, shape, channels):
    model = _time_distributed(inner(), shape)
    swapped = keras_relu.swap_activations(model, "relu", "prelu", alpha_initializer=0.0)
    wrapper, prelu = swapped.layers[1:]
    assert type(wrapper) is keras.layers.TimeDistributed
    assert wrapper.layer.activation is keras.activations.linear
    assert type(prelu) is keras_relu.PReLU and swapped.output_names == ["steps"]
    # One slope per channel of the inner layer, shared over time (and space), as for the
    # same layer unwrapped.
    assert tuple(prelu.alpha.shape) == (1,) * (len(shape) - 1) + (channels,)
    # The wrapper gives the output its name, so it is renamed "steps_linear" (on TensorFlow
    # and torch its weights' paths start with its name): compare weight by weight.
    for ours, theirs in zip(wrapper.weights, model.get_layer("steps").weights, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(ours), ops.convert_to_numpy(theirs))
    x = _x(shape)
    np.testing.assert_allclose(_run(swapped, x), _run(model, x), rtol=1e-6, atol=1e-6)
    loaded = _save_and_load(swapped, tmp_path / "time_distributed.keras")
    np.testing.assert_allclose(_run(loaded, x), _run(model, x), rtol=1e-6, atol=1e-6)
    assert loaded.get_layer("steps_linear").layer.activation is keras.activations.linear
