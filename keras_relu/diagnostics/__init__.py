"""Diagnostics for ReLU-family networks: what dies, and why.

- `dead_units`: dead and inactive units, sparsity and saturation of every
  activation (`activation_stats`, `summarize`, `DeadUnitMonitor`).
"""

from keras_relu.diagnostics.dead_units import DeadUnitMonitor as DeadUnitMonitor
from keras_relu.diagnostics.dead_units import DeadUnitWarning as DeadUnitWarning
from keras_relu.diagnostics.dead_units import (
    UnmeasuredActivationWarning as UnmeasuredActivationWarning,
)
from keras_relu.diagnostics.dead_units import activation_stats as activation_stats
from keras_relu.diagnostics.dead_units import is_activation_layer as is_activation_layer
from keras_relu.diagnostics.dead_units import summarize as summarize

__all__ = [
    "DeadUnitMonitor",
    "DeadUnitWarning",
    "UnmeasuredActivationWarning",
    "activation_stats",
    "is_activation_layer",
    "summarize",
]
