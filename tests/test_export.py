"""Export paths for models built with keras_relu (issue 6): SavedModel, TFLite/LiteRT, ONNX.

All three convert TensorFlow graphs, so these tests run only with KERAS_BACKEND=tensorflow.
The TFLite tests read the converted model's op list with `tf.lite.experimental.Analyzer`
(the interpreter's op details may show only the XNNPack delegate) and check that each
variant reaches TFLite's native kernel where TFLite has one.
"""

import contextlib
import io
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_relu

if keras.config.backend() != "tensorflow":
    pytest.skip(
        "export tests need KERAS_BACKEND=tensorflow: SavedModel, the TFLite converter and "
        f"tf2onnx convert TensorFlow graphs (backend is {keras.config.backend()})",
        allow_module_level=True,
    )

tf = pytest.importorskip("tensorflow")

INPUT_SHAPE = (8, 8, 3)
RTOL = 1e-5
ATOL = 1e-5


def _every_layer_model(gelu_approximate=False):
    """Every layer of the package, `activation="crelu"` in a Dense included.

    The convolutions before ReLU6 and ReLU let TFLite fold those into the convolution,
    as it does for Keras's own activations.
    """
    inputs = keras.Input(INPUT_SHAPE, name="x")
    conv = iter(keras.layers.Conv2D(4, 3, padding="same") for _ in range(5))
    x = keras_relu.PReLU()(next(conv)(inputs))
    x = keras_relu.ReLU6()(next(conv)(x))
    x = keras_relu.LeakyReLU(0.1)(next(conv)(x))
    x = keras_relu.ELU()(next(conv)(x))
    x = keras_relu.ReLU()(next(conv)(x))
    x = keras_relu.SELU()(keras.layers.Dense(4)(x))
    x = keras_relu.GELU(approximate=gelu_approximate)(keras.layers.Dense(4)(x))
    x = keras_relu.Swish(learn_beta=True)(keras.layers.Dense(4)(x))
    x = keras_relu.RReLU()(keras.layers.Dense(4)(x))
    x = keras_relu.CReLU()(keras.layers.Dense(4)(x))
    outputs = keras.layers.Dense(4, activation="crelu")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # Away from the initial values, alphas and beta included.
        weight.assign(rng.uniform(-0.5, 0.5, size=weight.shape).astype("float32"))
    return model


def _inputs(shape=INPUT_SHAPE, batch=3):
    x = np.random.default_rng(1).normal(scale=3.0, size=(batch, *shape)).astype("float32")
    x.flat[:4] = [0.0, -0.0, 6.0, -1e-3]  # The kinks.
    return x


def _keras_outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def every_layer():
    model = _every_layer_model()
    x = _inputs()
    return model, x, _keras_outputs(model, x)


# --- SavedModel ---------------------------------------------------------------------------


def test_saved_model_export_reproduces_keras(every_layer, tmp_path):
    model, x, expected = every_layer
    model.export(tmp_path / "saved", verbose=False)

    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, rtol=RTOL, atol=ATOL)
    serving = loaded.signatures["serving_default"]
    (output,) = serving(x=tf.constant(x)).values()
    np.testing.assert_allclose(output.numpy(), expected, rtol=RTOL, atol=ATOL)

    layer = keras.layers.TFSMLayer(str(tmp_path / "saved"), call_endpoint="serve")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=RTOL, atol=ATOL)


def test_saved_model_with_unknown_spatial_dimensions(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras_relu.PReLU()(keras.layers.Conv2D(4, 3)(inputs))  # alpha per channel only
    x = keras_relu.CReLU()(x)
    x = keras_relu.RReLU(seed=1)(keras.layers.Conv2D(4, 1, activation="crelu")(x))
    outputs = keras_relu.Swish(learn_beta=True)(x)
    model = keras.Model(inputs, outputs)
    model.export(tmp_path / "saved", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    for height, width in [(5, 7), (11, 4)]:
        x = _inputs((height, width, 3), batch=2)
        got = loaded.serve(x).numpy()
        assert got.shape == (2, height - 2, width - 2, 8)
        np.testing.assert_allclose(got, _keras_outputs(model, x), rtol=RTOL, atol=ATOL)


# --- TFLite / LiteRT ----------------------------------------------------------------------


def _to_tflite(model):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    return converter.convert()


def _tflite_ops(content):
    """The op names of a TFLite model in order, as `Analyzer` prints them."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        tf.lite.experimental.Analyzer.analyze(model_content=content)
    ops = re.findall(r"Op#\d+ (\w+)\(", printed.getvalue())
    assert ops, printed.getvalue()
    return ops


def _tflite_fused_activations(content):
    """`[(op, fused activation)]`: the Analyzer does not print an op's fused activation."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    def names(enum):
        return {v: k for k, v in vars(enum).items() if not k.startswith("_")}

    op_names = names(schema.BuiltinOperator)
    activation_names = names(schema.ActivationFunctionType)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    result = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = op_names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        fused = getattr(op.builtinOptions, "fusedActivationFunction", None)
        result.append((name, activation_names.get(fused)))
    return result


def _run_litert(content, x):
    interpreter_module = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="pip install ai-edge-litert (the LiteRT runtime)"
    )
    interpreter = interpreter_module.Interpreter(model_content=content)
    (input_detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(input_detail["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_detail["index"], x)
    interpreter.invoke()
    (output_detail,) = interpreter.get_output_details()
    return interpreter.get_tensor(output_detail["index"])


@pytest.fixture(scope="module")
def every_layer_tflite(every_layer):
    model, _, _ = every_layer
    return _to_tflite(model)


def test_tflite_every_layer_model_uses_builtin_ops_only(every_layer_tflite):
    ops = _tflite_ops(every_layer_tflite)
    # Conversion with TFLITE_BUILTINS alone already fails on a Flex op; check nonetheless.
    assert not [op for op in ops if op.startswith("FLEX") or op in ("CUSTOM", "DELEGATE")]
    for native in ("PRELU", "LEAKY_RELU", "ELU", "GELU"):
        assert native in ops, ops
    assert ops.count("LEAKY_RELU") == 2  # LeakyReLU, and RReLU at inference
    # ReLU6 and ReLU fold into the convolution before them, as Keras's own do.
    convolutions = [
        fused for op, fused in _tflite_fused_activations(every_layer_tflite) if op == "CONV_2D"
    ]
    assert convolutions == ["NONE", "RELU6", "NONE", "NONE", "RELU"]


def test_litert_reproduces_keras_for_every_layer(every_layer, every_layer_tflite):
    _, x, expected = every_layer
    np.testing.assert_allclose(_run_litert(every_layer_tflite, x), expected, rtol=1e-4, atol=1e-5)


# (id, layer factory, the op list the layer alone converts to).
NATIVE = [
    ("ReLU", lambda: keras_relu.ReLU(), ["RELU"]),
    ("ReLU-max_value=6", lambda: keras_relu.ReLU(max_value=6.0), ["RELU6"]),
    ("ReLU-negative_slope", lambda: keras_relu.ReLU(negative_slope=0.1), ["LEAKY_RELU"]),
    ("ReLU6", lambda: keras_relu.ReLU6(), ["RELU6"]),
    ("LeakyReLU", lambda: keras_relu.LeakyReLU(), ["LEAKY_RELU"]),
    ("LeakyReLU-0.3", lambda: keras_relu.LeakyReLU(0.3), ["LEAKY_RELU"]),
    ("PReLU", lambda: keras_relu.PReLU(), ["PRELU"]),
    ("PReLU-shared", lambda: keras_relu.PReLU(shared_axes=[1, 2, 3]), ["PRELU"]),
    ("PReLU-per-element", lambda: keras_relu.PReLU(shared_axes=[]), ["PRELU"]),
    ("RReLU", lambda: keras_relu.RReLU(seed=0), ["LEAKY_RELU"]),
    ("ELU", lambda: keras_relu.ELU(), ["ELU"]),
    ("GELU", lambda: keras_relu.GELU(), ["GELU"]),
    ("GELU-approximate", lambda: keras_relu.GELU(approximate=True), ["GELU"]),
]

# Variants TFLite has no kernel for: what they may become (cheap elementwise builtins).
# Measured with TF 2.21: SELU -> GREATER, MUL, EXP, SUB, MUL, SELECT_V2; Swish -> LOGISTIC,
# MUL (MUL, LOGISTIC, MUL with beta != 1); ELU(alpha != 1) -> ELU, MUL, GREATER, SELECT_V2;
# ReLU(threshold) -> GREATER, SELECT_V2; CReLU -> EXPAND_DIMS, MUL (with a fused RELU) and
# the SHAPE, STRIDED_SLICE, PACK, RESHAPE that rebuild the doubled shape for a None batch.
ELEMENTWISE = {"GREATER", "GREATER_EQUAL", "MUL", "EXP", "SUB", "ADD", "SELECT_V2", "NEG"}
ELEMENTWISE |= {"LOGISTIC", "ELU", "RELU", "MAXIMUM", "MINIMUM"}
RESHAPING = {"EXPAND_DIMS", "SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE", "CONCATENATION"}
NOT_NATIVE = [
    ("SELU", lambda: keras_relu.SELU(), ELEMENTWISE),
    ("Swish", lambda: keras_relu.Swish(), ELEMENTWISE),
    ("Swish-beta", lambda: keras_relu.Swish(beta=2.0), ELEMENTWISE),
    ("Swish-learned", lambda: keras_relu.Swish(learn_beta=True), ELEMENTWISE),
    ("ELU-alpha", lambda: keras_relu.ELU(alpha=0.5), ELEMENTWISE),
    ("ReLU-threshold", lambda: keras_relu.ReLU(threshold=0.5), ELEMENTWISE),
    ("CReLU", lambda: keras_relu.CReLU(), ELEMENTWISE | RESHAPING),
    ("CReLU-axis1", lambda: keras_relu.CReLU(axis=1), ELEMENTWISE | RESHAPING),
]


def _single_layer_model(layer):
    inputs = keras.Input((4, 5, 3))
    model = keras.Model(inputs, layer(inputs))
    for weight in model.weights:
        weight.assign(np.linspace(0.05, 0.8, int(np.prod(weight.shape))).reshape(weight.shape))
    return model


@pytest.mark.parametrize("factory,expected", [c[1:] for c in NATIVE], ids=[c[0] for c in NATIVE])
def test_tflite_maps_to_the_native_kernel(factory, expected):
    model = _single_layer_model(factory())
    content = _to_tflite(model)
    assert _tflite_ops(content) == expected
    x = _inputs((4, 5, 3), batch=2)
    np.testing.assert_allclose(
        _run_litert(content, x), _keras_outputs(model, x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "factory,allowed", [c[1:] for c in NOT_NATIVE], ids=[c[0] for c in NOT_NATIVE]
)
def test_tflite_without_a_native_kernel_uses_cheap_builtins(factory, allowed):
    model = _single_layer_model(factory())
    content = _to_tflite(model)
    ops = _tflite_ops(content)
    assert set(ops) <= allowed, ops
    assert len(ops) <= 8, ops
    x = _inputs((4, 5, 3), batch=2)
    np.testing.assert_allclose(
        _run_litert(content, x), _keras_outputs(model, x), rtol=1e-5, atol=1e-6
    )


def test_prelu_trained_with_fit_keeps_the_tflite_prelu_kernel():
    """fit's training step takes a faster form than export (tests/test_training_forms.py);
    after training, the converted model still has TFLite's PRELU kernel."""
    inputs = keras.Input((6, 6, 3))
    outputs = keras_relu.PReLU(shared_axes=[1, 2])(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 6, 3)), rng.normal(size=(16, 4, 4, 4))
    alpha = keras.ops.convert_to_numpy(model.layers[-1].alpha).copy()
    model.fit(x.astype("float32"), y.astype("float32"), epochs=1, verbose=0)
    assert not np.array_equal(keras.ops.convert_to_numpy(model.layers[-1].alpha), alpha)
    content = _to_tflite(model)
    assert _tflite_ops(content) == ["CONV_2D", "PRELU"]
    x = _inputs((6, 6, 3), batch=2)
    np.testing.assert_allclose(
        _run_litert(content, x), _keras_outputs(model, x), rtol=1e-5, atol=1e-6
    )


def test_keras_litert_export_gives_the_same_kernels(tmp_path):
    # Keras 3.15's own path, `model.export(path, format="litert")`, runs the same converter.
    inputs = keras.Input((4, 5, 3))
    x = keras_relu.PReLU()(keras.layers.Conv2D(3, 1)(inputs))
    outputs = keras_relu.LeakyReLU()(keras_relu.ELU()(x))
    model = keras.Model(inputs, outputs)
    model.export(tmp_path / "model.tflite", format="litert", verbose=False)
    content = (tmp_path / "model.tflite").read_bytes()
    assert _tflite_ops(content) == ["CONV_2D", "PRELU", "ELU", "LEAKY_RELU"]
    x = _inputs((4, 5, 3), batch=1)
    np.testing.assert_allclose(
        _run_litert(content, x), _keras_outputs(model, x), rtol=1e-5, atol=1e-6
    )


# --- ONNX ---------------------------------------------------------------------------------


def _to_onnx(model, shape):
    tf2onnx = pytest.importorskip("tf2onnx", reason="pip install tf2onnx onnx")
    signature = (tf.TensorSpec((None, *shape), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    return proto


def _run_onnx(proto, x):
    ort = pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    return output


ONNX_LAYERS = [
    ("ReLU", lambda: keras_relu.ReLU(), "Relu"),
    ("ReLU-max_value=6", lambda: keras_relu.ReLU(max_value=6.0), "Clip"),
    ("ReLU6", lambda: keras_relu.ReLU6(), "Clip"),
    ("LeakyReLU", lambda: keras_relu.LeakyReLU(), "LeakyRelu"),
    ("RReLU", lambda: keras_relu.RReLU(seed=0), "LeakyRelu"),
    ("ELU", lambda: keras_relu.ELU(), "Elu"),
    ("SELU", lambda: keras_relu.SELU(), "Selu"),
    ("Swish", lambda: keras_relu.Swish(), "Sigmoid"),
    ("Swish-learned", lambda: keras_relu.Swish(learn_beta=True), "Sigmoid"),
    ("CReLU", lambda: keras_relu.CReLU(), "Relu"),
    ("GELU-approximate", lambda: keras_relu.GELU(approximate=True), "Tanh"),
    ("GELU", lambda: keras_relu.GELU(), "Erf"),
]


@pytest.mark.parametrize("name,factory,onnx_op", ONNX_LAYERS, ids=[p[0] for p in ONNX_LAYERS])
def test_onnx_reproduces_keras(name, factory, onnx_op):
    model = _single_layer_model(factory())
    proto = _to_onnx(model, (4, 5, 3))
    op_types = [node.op_type for node in proto.graph.node]
    assert onnx_op in op_types, op_types
    x = _inputs((4, 5, 3), batch=2)
    np.testing.assert_allclose(_run_onnx(proto, x), _keras_outputs(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared_axes", [None, [1, 2, 3], []], ids=["channel", "one", "element"])
def test_onnx_prelu_becomes_native_prelu(shared_axes):
    # tf2onnx maps only tfjs's and TFLite's PReLU ops to ONNX's PRelu: Keras's
    # relu(x) + (-a)*relu(-x) form (what TFLite needs) becomes five elementwise ops, which
    # keras_relu.onnx.fuse_prelu turns into one PRelu with the same outputs.
    model = _single_layer_model(keras_relu.PReLU(shared_axes=shared_axes))
    proto = _to_onnx(model, (4, 5, 3))
    x = _inputs((4, 5, 3), batch=2)
    unfused = _run_onnx(proto, x)
    assert {node.op_type for node in proto.graph.node} == {"Relu", "Neg", "Mul", "Add"}
    assert keras_relu.onnx.fuse_prelu(proto) == 1
    assert [node.op_type for node in proto.graph.node] == ["PRelu"]
    fused = _run_onnx(proto, x)
    np.testing.assert_array_equal(fused, unfused)
    np.testing.assert_allclose(fused, _keras_outputs(model, x), rtol=1e-6, atol=0)


@pytest.mark.parametrize("path", ["tf2onnx", "keras-export"])
def test_onnx_every_layer_model_reproduces_keras(tmp_path, path):
    model = _every_layer_model()
    if path == "tf2onnx":
        proto = _to_onnx(model, INPUT_SHAPE)
        assert keras_relu.onnx.fuse_prelu(proto) == 1
    else:
        onnx = pytest.importorskip("onnx", reason="pip install onnx tf2onnx")
        pytest.importorskip("tf2onnx", reason="Keras exports ONNX through tf2onnx")
        model(_inputs())  # Keras's ONNX export wants a model that has been called.
        model.export(tmp_path / "model.onnx", format="onnx", verbose=False)
        assert keras_relu.onnx.fuse_prelu_file(tmp_path / "model.onnx") == 1
        proto = onnx.load(tmp_path / "model.onnx")
    op_types = {node.op_type for node in proto.graph.node}
    assert {"PRelu", "LeakyRelu", "Elu", "Selu", "Clip", "Relu", "Sigmoid"} <= op_types, op_types
    assert "Neg" not in op_types, op_types  # PReLU's relu(-x); CReLU's negation is a Mul.
    x = _inputs()
    np.testing.assert_allclose(_run_onnx(proto, x), _keras_outputs(model, x), rtol=1e-4, atol=1e-5)


def test_readme_export_columns_are_the_tested_conversions():
    # README's "Which one should I use?" table states each variant's TFLite kernel and
    # ONNX op from examples/choose_variant.py's EXPORTS; they must be what the tests
    # above convert each default layer to.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from choose_variant import EXPORTS

    def default_layers(cases):
        return {type(case[1]()): case[2] for case in cases if "-" not in case[0]}

    native, not_native = default_layers(NATIVE), default_layers(NOT_NATIVE)
    onnx_ops = default_layers(ONNX_LAYERS)
    assert set(EXPORTS) == set(keras_relu.names())
    for variant in keras_relu.registry.VARIANTS:
        export = EXPORTS[variant.name]
        if export.tflite is None:
            assert variant.layer in not_native, variant.name
        else:
            assert native[variant.layer] == [export.tflite], variant.name
        if variant.name == "prelu":  # test_onnx_prelu_becomes_native_prelu
            assert export.onnx == "PRelu" and "fuse_prelu" in export.onnx_note
        elif export.onnx is None:  # Several ops: the one the test looks for is named.
            assert f"`{onnx_ops[variant.layer]}`" in export.onnx_note, variant.name
        else:
            assert onnx_ops[variant.layer] == export.onnx, variant.name
