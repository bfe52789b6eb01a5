"""Configs, `.keras` files, fresh-process loading and the committed fixtures."""

import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu

SAVED_MODELS = pathlib.Path(__file__).parents[1] / "saved_models"

NON_DEFAULT_KWARGS = {
    "relu": {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
    "leaky_relu": {"negative_slope": 0.2},
    "prelu": {"alpha_initializer": 0.1, "shared_axes": [1], "alpha_regularizer": "l2"},
    "rrelu": {"lower": 0.05, "upper": 0.15, "seed": 9},
    "elu": {"alpha": 0.5},
    "selu": {},
    "relu6": {},
    "crelu": {"axis": 1},
    "gelu": {"approximate": True},
    "swish": {"beta": 0.7, "learn_beta": True},
}


def test_non_default_kwargs_cover_every_variant():
    assert sorted(NON_DEFAULT_KWARGS) == sorted(keras_relu.names())


def test_config_round_trip(variant):
    layer = variant.layer(**NON_DEFAULT_KWARGS[variant.name])
    config = layer.get_config()
    restored = variant.layer.from_config(config)
    assert restored.get_config() == config
    for argument, value in NON_DEFAULT_KWARGS[variant.name].items():
        assert config[argument] is not None, argument
        if argument not in ("alpha_initializer", "alpha_regularizer"):
            assert config[argument] == value, argument


def test_serialized_under_the_package_name(variant):
    serialized = keras.saving.serialize_keras_object(variant.layer())
    assert serialized["registered_name"] == f"keras_relu>{variant.layer.__name__}"
    function = keras.saving.serialize_keras_object(variant.function)
    assert function["config"] == f"keras_relu>{variant.function.__name__}"
    assert keras.saving.deserialize_keras_object(function) is variant.function


def every_layer_model():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    for name, kwargs in NON_DEFAULT_KWARGS.items():
        x = keras_relu.get(name, **kwargs)(x)
        x = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.Dense(3, activation="crelu")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, x)


def _train(model, x):
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, np.ones((len(x), 6), "float32"), epochs=2, batch_size=4, verbose=0)


def _learned(model):
    return {
        w.path: ops.convert_to_numpy(w) for w in model.weights if w.path.endswith(("alpha", "beta"))
    }


def test_model_saves_and_loads_in_a_fresh_process(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 3)).astype("float32")
    model = every_layer_model()
    initial = _learned(model)
    _train(model, x)
    trained = _learned(model)
    assert len(trained) == 2 and all(not np.allclose(initial[k], trained[k]) for k in trained)
    path = tmp_path / "every_layer.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import keras_relu
        model = keras.saving.load_model({str(path)!r}, safe_mode=True)
        x = np.load({str(tmp_path / "x.npy")!r})
        arrays = {{w.path: keras.ops.convert_to_numpy(w) for w in model.weights}}
        np.savez({str(tmp_path / "out.npz")!r}, __outputs__=model.predict(x, verbose=0), **arrays)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    loaded = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(loaded["__outputs__"], model.predict(x, verbose=0), rtol=1e-5)
    for weight_path, value in trained.items():
        np.testing.assert_array_equal(loaded[weight_path], value)


def test_loading_without_the_package_names_it(tmp_path):
    path = tmp_path / "prelu.keras"
    keras.Sequential([keras.Input((3,)), keras_relu.PReLU()]).save(path)
    script = f"import keras; keras.saving.load_model({str(path)!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "keras_relu>PReLU" in result.stderr


@pytest.mark.parametrize("path", sorted(SAVED_MODELS.glob("cifar10_*.keras")), ids=lambda p: p.stem)
def test_committed_cifar10_models_load_safely_and_predict(path):
    model = keras.saving.load_model(path, safe_mode=True)
    pixels = np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    logits = model.predict(pixels, verbose=0)
    assert logits.shape == (4, 10) and np.all(np.isfinite(logits))
    # The activation the file is named after is one of this package's layers.
    arm = path.stem.split("_")[1]
    assert any(type(layer) is keras_relu.variant(arm).layer for layer in model.layers)


@pytest.mark.parametrize("name", ["every_layer_cnn", "crelu_string_mlp"])
def test_committed_fixtures_still_load_and_reproduce(name):
    model = keras.saving.load_model(SAVED_MODELS / f"{name}.keras", safe_mode=True)
    expected = np.load(SAVED_MODELS / f"{name}.npz")
    actual = model.predict(expected["inputs"], verbose=0)
    np.testing.assert_allclose(actual, expected["outputs"], rtol=1e-4, atol=1e-5)
