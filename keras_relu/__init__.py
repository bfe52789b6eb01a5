"""ReLU-family activations for Keras 3: functions, layers and a registry.

>>> import keras, keras_relu
>>> keras_relu.PReLU()                       # a layer, by class
>>> keras_relu.get("rrelu", seed=0)          # a layer, by name
>>> keras.layers.Dense(64, activation="crelu")  # a string, declares 128 outputs
>>> keras_relu.swap_activations(model, "relu", "prelu")  # into a model you have
>>> keras.layers.Dense(64, kernel_initializer="randomized_asymmetric")  # Lu et al. 2019
"""

from keras_relu import _keras_integration
from keras_relu import activations as activations
from keras_relu import initializers as initializers
from keras_relu import layers as layers
from keras_relu import onnx as onnx
from keras_relu import registry
from keras_relu import swap as swap
from keras_relu.layers import ELU as ELU
from keras_relu.layers import GELU as GELU
from keras_relu.layers import SELU as SELU
from keras_relu.layers import CReLU as CReLU
from keras_relu.layers import LeakyReLU as LeakyReLU
from keras_relu.layers import PReLU as PReLU
from keras_relu.layers import ReLU as ReLU
from keras_relu.layers import ReLU6 as ReLU6
from keras_relu.layers import RReLU as RReLU
from keras_relu.layers import SiLU as SiLU
from keras_relu.layers import Swish as Swish
from keras_relu.registry import VARIANTS as VARIANTS
from keras_relu.registry import Variant as Variant
from keras_relu.registry import get as get
from keras_relu.registry import names as names
from keras_relu.registry import variant as variant
from keras_relu.swap import swap_activations as swap_activations

__version__ = "0.1.0"

_keras_integration.install(
    registry.stateless_functions(),
    activations.crelu,
    layers.CReLU,
    initializers.INITIALIZERS_BY_NAME,
    initializers.for_layer_weight,
)
