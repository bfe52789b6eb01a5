"""Writes the fixture models that tests/test_saving.py loads on every backend.

Run from the repository root with the TensorFlow backend, only when the fixtures
must change on purpose (a changed file means old models may no longer load):

    KERAS_BACKEND=tensorflow python saved_models/make_fixtures.py
"""

import pathlib

import keras
import numpy as np

import keras_relu

HERE = pathlib.Path(__file__).parent


def every_layer_cnn():
    """A small CNN with one of each layer; PReLU and Swish's beta are trained."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    for name in keras_relu.names():
        kwargs = {"learn_beta": True} if name == "swish" else {}
        x = keras_relu.get(name, **kwargs)(x)
        x = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="every_layer_cnn")


def crelu_string_mlp():
    """`activation="crelu"` in Dense and Conv2D, resolved by name."""
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3, activation="crelu"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="crelu"),
            keras.layers.Dense(2),
        ],
        name="crelu_string_mlp",
    )


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for build in (every_layer_cnn, crelu_string_mlp):
        model = build()
        shape = model.input_shape[1:]
        x = rng.normal(size=(16, *shape)).astype("float32")
        y = rng.normal(size=(16, model.output_shape[-1])).astype("float32")
        model.compile(keras.optimizers.SGD(0.05), "mse")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        model.save(HERE / f"{model.name}.keras")
        probe = x[:4]
        np.savez(HERE / f"{model.name}.npz", inputs=probe, outputs=model.predict(probe, verbose=0))
        print(f"wrote {model.name}.keras and {model.name}.npz")


if __name__ == "__main__":
    main()
