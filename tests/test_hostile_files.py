"""Hostile and broken `.keras` files (issue 6).

Loading a model file is an attack surface, so a file that names one of our layers with
values the constructor would refuse, a truncated or corrupted archive, or weights of the
wrong shape must fail with a clear error that names what is wrong, execute nothing, and
leave every file written before untouched. Models built from this package load under
`safe_mode=True` and need no `Lambda` and no pickle.

Hostile files are made from a good one by editing its `config.json` (or its weights) with
`zipfile` and `h5py` in `tmp_path`. These tests run on every backend.

The examples' result files (JSON, one per finished run) get the same treatment at the end:
whatever is in one, reading it names the file and what to do, or returns a JSON object.
"""

import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import h5py
import keras
import numpy as np
import pytest

import keras_relu

# Every layer of the package, each under a fixed name so that a test can edit its config.
LAYER_NAMES = {
    "relu": "k_relu",
    "leaky_relu": "k_leaky",
    "prelu": "k_prelu",
    "rrelu": "k_rrelu",
    "elu": "k_elu",
    "selu": "k_selu",
    "relu6": "k_relu6",
    "crelu": "k_crelu",
    "gelu": "k_gelu",
    "swish": "k_swish",
}
INPUT_SHAPE = (4, 3)


def _every_layer_model(seed=0):
    """A functional model with every layer, `activation="crelu"` in a Dense included."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Dense(3, name="dense_in")(inputs)
    x = keras_relu.ReLU(max_value=5.0, name=LAYER_NAMES["relu"])(x)
    x = keras_relu.LeakyReLU(0.1, name=LAYER_NAMES["leaky_relu"])(x)
    x = keras_relu.PReLU(name=LAYER_NAMES["prelu"])(x)
    x = keras_relu.RReLU(seed=3, name=LAYER_NAMES["rrelu"])(x)
    x = keras_relu.ELU(alpha=0.5, name=LAYER_NAMES["elu"])(x)
    x = keras_relu.SELU(name=LAYER_NAMES["selu"])(x)
    x = keras_relu.ReLU6(name=LAYER_NAMES["relu6"])(x)
    x = keras_relu.GELU(approximate=True, name=LAYER_NAMES["gelu"])(x)
    x = keras_relu.Swish(beta=1.5, learn_beta=True, name=LAYER_NAMES["swish"])(x)
    x = keras_relu.CReLU(name=LAYER_NAMES["crelu"])(x)
    outputs = keras.layers.Dense(2, activation="crelu", name="dense_crelu")(x)
    model = keras.Model(inputs, outputs)
    # Weights that differ from the initial values, so that a lost weight shows.
    for weight in model.weights:
        weight.assign(rng.uniform(0.1, 0.9, size=weight.shape).astype("float32"))
    return model


def _without_object_ids(config):
    """`config` less the `shared_object_id` entries, which are Python `id()`s."""
    if isinstance(config, dict):
        return {k: _without_object_ids(v) for k, v in config.items() if k != "shared_object_id"}
    if isinstance(config, list):
        return [_without_object_ids(v) for v in config]
    return config


def _serialized_layers(model):
    config = keras.saving.serialize_keras_object(model)["config"]["layers"]
    return _without_object_ids(json.loads(json.dumps(config)))


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_config(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def _layer_config(config, name):
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] == name:
            return layer
    raise KeyError(name)


def _rewrite(source, target, replacements):
    """Copies the `.keras` zip `source` to `target`, replacing members' bytes."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, replacements.get(info.filename, old.read(info.filename)))


def _write_config(source, target, config):
    # allow_nan: JSON as Python writes it accepts NaN and Infinity, so a file can carry them.
    _rewrite(source, target, {"config.json": json.dumps(config, allow_nan=True).encode()})


def _inputs(batch=5):
    values = np.random.default_rng(7).normal(scale=3.0, size=(batch, *INPUT_SHAPE))
    return values.astype("float32")


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    """A good `.keras` file of the every-layer model, and its outputs on `_inputs()`."""
    path = tmp_path_factory.mktemp("good") / "model.keras"
    model = _every_layer_model()
    model.save(path)
    return path, _predict(model, _inputs())


@pytest.fixture
def witness(good_file, tmp_path):
    """Checks after a test that no file written before it changed.

    It records the good file's hash and the working folder's listing, runs the test,
    then checks them again and that the good file still loads and gives its outputs.
    """
    path, expected = good_file
    before = (_sha256(path), sorted(os.listdir(path.parent)))
    yield tmp_path
    assert (_sha256(path), sorted(os.listdir(path.parent))) == before
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_predict(reloaded, _inputs()), expected, rtol=1e-6, atol=1e-6)


def _assert_rejected(path, *fragments):
    """Loading `path` raises a ValueError whose message holds every fragment; the file
    itself and its folder are unchanged by the attempt."""
    digest, listing = _sha256(path), sorted(os.listdir(path.parent))
    with pytest.raises(ValueError) as info:
        keras.saving.load_model(path, safe_mode=True)
    # The torch backend prints a received shape as torch.Size([1, 5]).
    message = re.sub(r"torch\.Size\(\[(\d+)\]\)", r"(\1,)", str(info.value))
    message = re.sub(r"torch\.Size\(\[([\d, ]*)\]\)", r"(\1)", message)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in error message: {message}"
    assert _sha256(path) == digest
    assert sorted(os.listdir(path.parent)) == listing
    return message


NAN = float("nan")
INF = float("inf")

# (variant, config key, hostile value, fragments the error message must name).
BAD_VALUES = [
    ("leaky_relu", "negative_slope", NAN, ["negative_slope", "nan"]),
    ("leaky_relu", "negative_slope", -0.1, ["negative_slope", ">= 0"]),
    ("leaky_relu", "negative_slope", INF, ["negative_slope", "inf"]),
    ("leaky_relu", "negative_slope", "0.1", ["negative_slope", "'0.1'"]),
    ("leaky_relu", "negative_slope", [0.1], ["negative_slope"]),
    ("relu", "max_value", -1.0, ["max_value", ">= 0"]),
    ("relu", "max_value", NAN, ["max_value", "nan"]),
    ("relu", "negative_slope", -INF, ["negative_slope"]),
    ("relu", "threshold", INF, ["threshold", "inf"]),
    ("relu", "threshold", True, ["threshold", "True"]),
    ("elu", "alpha", -1.0, ["alpha", ">= 0"]),
    ("elu", "alpha", NAN, ["alpha", "nan"]),
    ("rrelu", "lower", -0.125, ["lower", ">= 0"]),
    ("rrelu", "upper", NAN, ["upper", "nan"]),
    ("rrelu", "lower", 0.5, ["lower", "upper", "<="]),
    ("rrelu", "seed", 1.5, ["seed", "1.5"]),
    ("rrelu", "seed", "1", ["seed", "'1'"]),
    ("prelu", "shared_axes", [0], ["shared_axes", "batch axis"]),
    ("prelu", "shared_axes", [5], ["shared_axes", "5"]),
    ("prelu", "shared_axes", [2**40], ["shared_axes", str(2**40)]),
    ("prelu", "shared_axes", [-3], ["shared_axes", "-3"]),
    ("prelu", "shared_axes", ["1"], ["shared_axes", "'1'"]),
    ("prelu", "shared_axes", True, ["shared_axes", "True"]),
    ("crelu", "axis", 10**9, ["axis", str(10**9)]),
    ("crelu", "axis", -3, ["axis", "-3"]),
    ("crelu", "axis", 0, ["axis", "batch axis"]),
    ("crelu", "axis", 1.5, ["axis", "1.5"]),
    ("crelu", "axis", "1", ["axis", "'1'"]),
    ("crelu", "axis", None, ["axis", "None"]),
    ("gelu", "approximate", "false", ["approximate", "'false'"]),
    ("gelu", "approximate", 0, ["approximate"]),
    ("swish", "beta", NAN, ["beta", "nan"]),
    ("swish", "beta", -1.0, ["beta", ">= 0"]),
    ("swish", "learn_beta", 1, ["learn_beta"]),
    # Extra keys: a key no layer knows, and an argument of another layer.
    ("leaky_relu", "payload", "__import__('os').system('id')", ["payload"]),
    ("relu6", "max_value", 6.0, ["max_value"]),
    ("selu", "alpha", 2.0, ["alpha"]),
]


@pytest.mark.parametrize(
    "variant_name,key,value,fragments",
    BAD_VALUES,
    ids=[f"{v}-{k}={value!r}" for v, k, value, _ in BAD_VALUES],
)
def test_invalid_config_value_is_a_clear_value_error(
    good_file, witness, variant_name, key, value, fragments
):
    path, _ = good_file
    config = _read_config(path)
    _layer_config(config, LAYER_NAMES[variant_name])["config"][key] = value
    hostile = witness / "hostile.keras"
    _write_config(path, hostile, config)
    _assert_rejected(hostile, *fragments)


def test_nan_constant_alpha_initializer_is_rejected(good_file, witness):
    # Keras's Constant initializer takes any value; a NaN one would give NaN slopes to a
    # clone or a re-initialised model, so PReLU must refuse it like any other NaN.
    path, _ = good_file
    config = _read_config(path)
    layer = _layer_config(config, LAYER_NAMES["prelu"])["config"]
    layer["alpha_initializer"]["config"]["value"] = NAN
    hostile = witness / "hostile.keras"
    _write_config(path, hostile, config)
    _assert_rejected(hostile, "alpha_initializer", "nan")


def test_invalid_keras_sub_config_is_a_value_error(good_file, witness):
    path, _ = good_file
    config = _read_config(path)
    layer = _layer_config(config, LAYER_NAMES["prelu"])["config"]
    layer["alpha_regularizer"] = {
        "module": "keras.regularizers",
        "class_name": "L2",
        "config": {"l2": NAN},
        "registered_name": None,
    }
    hostile = witness / "hostile.keras"
    _write_config(path, hostile, config)
    _assert_rejected(hostile, "l2", "nan")


def test_config_naming_an_arbitrary_callable_executes_nothing(good_file, witness):
    path, _ = good_file
    canary = witness / "canary"
    config = _read_config(path)
    layer = _layer_config(config, LAYER_NAMES["prelu"])["config"]
    layer["alpha_initializer"] = {
        "module": "os",
        "class_name": "system",
        "config": {"command": f"touch {canary}"},
        "registered_name": None,
    }
    hostile = witness / "hostile.keras"
    _write_config(path, hostile, config)
    _assert_rejected(hostile, "os", "system")
    assert not canary.exists()


def test_layer_class_outside_keras_is_refused(good_file, witness):
    path, _ = good_file
    canary = witness / "canary"
    config = _read_config(path)
    layer = _layer_config(config, LAYER_NAMES["relu"])
    layer.update(module="subprocess", class_name="Popen", registered_name="subprocess>Popen")
    layer["config"] = {"args": ["touch", str(canary)], "name": LAYER_NAMES["relu"]}
    hostile = witness / "hostile.keras"
    _write_config(path, hostile, config)
    with pytest.raises((ValueError, TypeError), match="Popen"):
        keras.saving.load_model(hostile, safe_mode=True)
    assert not canary.exists()


def test_lambda_in_the_config_is_refused_under_safe_mode(witness):
    # A file whose config holds a Lambda (Python bytecode): safe_mode refuses it and its
    # code never runs. Models of this package never need one (see the test below).
    canary = witness / "canary"
    inputs = keras.Input(INPUT_SHAPE)
    code = f"lambda x: (__import__('pathlib').Path({str(canary)!r}).touch(), x)[1]"
    outputs = keras.layers.Lambda(eval(code))(keras_relu.ReLU()(inputs))
    path = witness / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    canary.unlink()  # Building the model called the lambda once, here.
    for kwargs in ({}, {"safe_mode": True}):
        with pytest.raises(ValueError, match="safe_mode"):
            keras.saving.load_model(path, **kwargs)
        assert not canary.exists()


def test_package_models_need_no_lambda_and_no_pickle(good_file):
    path, expected = good_file
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        text = archive.read("config.json").decode()
    for marker in ('"Lambda"', "__lambda__", "__bytes__", "pickle", "marshal"):
        assert marker not in text
    classes = {layer["class_name"] for layer in json.loads(text)["config"]["layers"]}
    assert {v.layer.__name__ for v in keras_relu.VARIANTS} <= classes
    model = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_predict(model, _inputs()), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("keep", [0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_archive_is_a_value_error_naming_the_file(good_file, witness, keep):
    path, _ = good_file
    data = path.read_bytes()
    truncated = witness / "truncated.keras"
    truncated.write_bytes(data[: int(len(data) * keep)])
    _assert_rejected(truncated, str(truncated))


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_corrupted_member_is_refused_naming_it(good_file, witness, member):
    # The bytes of one member are damaged but the archive's directory is intact. zipfile's
    # CRC check catches it; Keras lets zipfile.BadZipFile through as it is (not a
    # ValueError), with the member's name.
    path, _ = good_file
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    data[start : start + 16] = b"\xff" * 16
    corrupted = witness / "corrupted.keras"
    corrupted.write_bytes(bytes(data))
    digest = _sha256(corrupted)
    with pytest.raises((ValueError, zipfile.BadZipFile), match=member.replace(".", r"\.")):
        keras.saving.load_model(corrupted, safe_mode=True)
    assert _sha256(corrupted) == digest


def test_config_that_is_not_json_is_a_value_error(good_file, witness):
    path, _ = good_file
    hostile = witness / "hostile.keras"
    _rewrite(path, hostile, {"config.json": b'{"class_name": "Functional", "config": '})
    # json.JSONDecodeError is a ValueError.
    _assert_rejected(hostile, "line 1")


def _edit_weights(source, target, edit):
    """Copies `source` to `target` with `edit(h5_file)` applied to its weights."""
    with zipfile.ZipFile(source) as archive:
        buffer = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(buffer, "r+") as weights:
        edit(weights)
    _rewrite(source, target, {"model.weights.h5": buffer.getvalue()})


def _dataset(weights, layer_group):
    found = []
    weights.visititems(
        lambda name, obj: (
            found.append(name)
            if isinstance(obj, h5py.Dataset) and name.startswith(f"layers/{layer_group}/")
            else None
        )
    )
    assert len(found) == 1, found
    return found[0]


# On a failed weight, Keras 3.15 retries under another path and warns that it found none.
_RETRY_WARNING = "ignore:Skipping nested container:UserWarning"


@pytest.mark.filterwarnings(_RETRY_WARNING)
@pytest.mark.parametrize(
    "layer_group,new_shape,fragments",
    [
        ("p_re_lu", (1, 5), ["k_prelu", "(1, 3)", "(1, 5)"]),
        ("p_re_lu", (3,), ["k_prelu", "(1, 3)", "(3,)"]),
        ("swish", (2,), ["k_swish", "(2,)"]),
    ],
)
def test_weights_of_the_wrong_shape_are_a_value_error(
    good_file, witness, layer_group, new_shape, fragments
):
    path, _ = good_file

    def edit(weights):
        name = _dataset(weights, layer_group)
        del weights[name]
        weights.create_dataset(name, data=np.full(new_shape, 0.5, dtype="float32"))

    hostile = witness / "hostile.keras"
    _edit_weights(path, hostile, edit)
    _assert_rejected(hostile, *fragments)


@pytest.mark.filterwarnings(_RETRY_WARNING)
def test_missing_weights_are_a_value_error(good_file, witness):
    path, _ = good_file

    def edit(weights):
        del weights[_dataset(weights, "p_re_lu")]

    hostile = witness / "hostile.keras"
    _edit_weights(path, hostile, edit)
    _assert_rejected(hostile, "k_prelu")


_RELOAD_SCRIPT = textwrap.dedent(
    """
    import os, sys
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch  # before TensorFlow, as tests/conftest.py does
    import keras
    import numpy as np
    import keras_relu  # noqa: F401  (registers the layers; safe_mode stays on)

    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    x = np.load(sys.argv[2])
    weights = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    np.savez(sys.argv[3], __outputs__=keras.ops.convert_to_numpy(model(x)), **weights)
    """
)


def test_saving_over_an_existing_file_then_loading_in_another_process(tmp_path):
    path = tmp_path / "model.keras"
    first = _every_layer_model(seed=1)
    first.save(path)
    second = _every_layer_model(seed=2)
    second.save(path)  # over the first file: overwrite=True is the default.
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]  # no temporary file left over

    x = _inputs()
    np.save(tmp_path / "x.npy", x)
    environment = {**os.environ, "KERAS_BACKEND": keras.config.backend()}
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(path), str(tmp_path / "x.npy"), "out.npz"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(loaded["__outputs__"], _predict(second, x), rtol=1e-6, atol=1e-6)
    assert not np.allclose(loaded["__outputs__"], _predict(first, x))
    expected = {w.path: keras.ops.convert_to_numpy(w) for w in second.weights}
    assert set(loaded.files) - {"__outputs__"} == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    # The configs the other process read are those written: every layer's arguments.
    assert _without_object_ids(_read_config(path)["config"]["layers"]) == _serialized_layers(second)


def test_nan_and_infinity_survive_as_json_only_where_valid(good_file):
    # The good file's config holds no NaN or Infinity at all: those only come from a
    # hostile editor, and the tests above show each is refused.
    path, _ = good_file
    with zipfile.ZipFile(path) as archive:
        text = archive.read("config.json").decode()
    assert "NaN" not in text and "Infinity" not in text
    config = json.loads(text)
    for variant_name, name in LAYER_NAMES.items():
        layer_config = _layer_config(config, name)["config"]
        for key, value in layer_config.items():
            if isinstance(value, float):
                assert math.isfinite(value), (variant_name, key, value)


def test_round_trip_config_is_unchanged(good_file):
    path, _ = good_file
    model = keras.saving.load_model(path, safe_mode=True)
    assert _serialized_layers(model) == _without_object_ids(_read_config(path)["config"]["layers"])


# --- The examples' result files (issue 27): named, with what to do, never a traceback.

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples"))
from cifar10 import cli as examples_cli  # noqa: E402


@pytest.mark.parametrize(
    "content,reason",
    [
        (b'{"arm": "relu", "seed": 0, "hist', "not valid JSON: Unterminated string"),
        (b"\xff\xfe\x00binary", "unreadable: 'utf-8' codec can't decode"),
        (b"[" * 100_000, "not a result: JSON nested too deeply"),
        (b'"relu"', "not a JSON object"),
        (b'{"arm": "relu", "history": []}', "no 'history.epoch_seconds'"),
        (b'{"arm": null, "history": {"epoch_seconds": [1.0]}}', "no 'arm'"),
        (None, "unreadable: Is a directory"),
    ],
)
def test_a_hostile_result_file_is_named_with_what_to_do(tmp_path, content, reason):
    path = tmp_path / "runs" / "relu_seed0.json"
    if content is None:
        path.mkdir(parents=True)
    else:
        path.parent.mkdir()
        path.write_bytes(content)
    with pytest.raises(examples_cli.ResultFileError) as raised:
        examples_cli.read_result(path, ("arm", "history.epoch_seconds"))
    message = str(raised.value)
    assert message.startswith(f"{path} is not a finished result ({reason}"), message
    assert message.endswith("); delete it to retrain that arm.") and "\n" not in message
    assert isinstance(raised.value, ValueError)  # What the scripts catch.


def test_a_whole_result_file_reads_back_as_written(tmp_path):
    path = tmp_path / "run.json"
    payload = {"arm": "relu", "history": {"epoch_seconds": [1.5, float("nan")]}}
    path.write_text(json.dumps(payload))
    read = examples_cli.read_result(path, ("arm", "history.epoch_seconds"))
    assert read["arm"] == "relu" and read["history"]["epoch_seconds"][0] == 1.5
    assert math.isnan(read["history"]["epoch_seconds"][1])  # NaN is kept, as the runs write it.
