"""The airbench-style CNN (Jordan 2024, arXiv 2404.00498), one per activation arm.

```
conv 2x2 (24, valid) -> act
3 x [conv 3x3 -> max-pool 2 -> BatchNorm -> act -> conv 3x3 -> BatchNorm -> act],
    widths 32, 64, 128
global max-pool -> dense 10 -> x 1/9 (logits)
```
About 0.3M parameters and 20M multiply-adds with ReLU. Inputs are raw pixel
values in [0, 255]; the model normalises them itself, so a saved model needs no
preprocessing.
"""

import dataclasses

import keras
import numpy as np

import keras_relu

STEM_WIDTH = 24
BLOCK_WIDTHS = (32, 64, 128)
# CIFAR-10 per-channel mean and standard deviation, in pixel units.
PIXEL_MEAN = np.array([0.4914, 0.4822, 0.4465]) * 255
PIXEL_STD = np.array([0.2470, 0.2435, 0.2616]) * 255


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm of the comparison: a registry variant, its arguments, a width factor."""

    name: str
    variant: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    width_factor: float = 1.0  # Multiplies every conv's filters (CReLU with half filters).

    def activation(self, seed):
        kwargs = dict(self.kwargs)
        if self.variant == "rrelu":
            kwargs["seed"] = seed
        return keras_relu.get(self.variant, **kwargs)


ARMS = {
    arm.name: arm
    for arm in (
        Arm("relu", "relu"),
        Arm("leaky_relu", "leaky_relu", {"negative_slope": 0.01}),
        Arm("prelu", "prelu"),  # Channel-wise alpha at 0.25; no weight decay on it.
        Arm("rrelu", "rrelu"),
        Arm("elu", "elu"),
        Arm("selu", "selu"),
        Arm("relu6", "relu6"),
        Arm("crelu", "crelu"),  # Same filters: each CReLU doubles the next layer's input.
        Arm("crelu_half", "crelu", width_factor=0.5),  # Half filters: same widths after CReLU.
        Arm("gelu", "gelu"),
        Arm("swish", "swish"),
    )
}


def build_model(arm, seed, input_shape=(32, 32, 3), classes=10):
    """Returns the CNN for `arm` (a name in `ARMS` or an `Arm`), uncompiled.

    The same `seed` gives the same initial weights to every arm of equal shapes.
    """
    arm = ARMS[arm] if isinstance(arm, str) else arm
    keras.utils.set_random_seed(seed)

    def width(filters):
        return int(filters * arm.width_factor)

    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Normalization(mean=PIXEL_MEAN, variance=PIXEL_STD**2)(inputs)
    x = keras.layers.Conv2D(width(STEM_WIDTH), 2, name="stem")(x)
    x = arm.activation(seed)(x)
    for block, filters in enumerate(BLOCK_WIDTHS, start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(
                width(filters), 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}"
            )(x)
            if conv == 1:
                x = keras.layers.MaxPooling2D(2)(x)
            # PyTorch's BatchNorm momentum: steadier statistics on short runs.
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = arm.activation(seed)(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    # airbench's fixed 1/9 logit scale: a max-pooled head starts with large logits.
    outputs = keras.layers.Rescaling(1 / 9, name="logit_scale")(x)
    return keras.Model(inputs, outputs, name=f"airbench_{arm.name}")


def multiply_adds(model):
    """Multiply-adds of one forward pass of one image: convolutions and dense layers.

    A convolution costs `output positions x kernel size`; BatchNorm, pooling and
    activations (a few operations per output value) are left out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width = layer.output.shape[1:3]
            total += height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total
