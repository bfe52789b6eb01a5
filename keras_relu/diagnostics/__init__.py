"""Diagnostics for ReLU-family networks: what dies, and why.

- `dead_units`: dead and inactive units, sparsity and saturation of every
  activation (`activation_stats`, `summarize`, `DeadUnitMonitor`).
- `gradients`: gradient norms and update ratios per layer during `fit`
  (`GradientMonitor`, `GradientWarning`).
"""

from keras_relu.diagnostics.dead_units import DeadUnitMonitor as DeadUnitMonitor
from keras_relu.diagnostics.dead_units import DeadUnitWarning as DeadUnitWarning
from keras_relu.diagnostics.dead_units import activation_stats as activation_stats
from keras_relu.diagnostics.dead_units import is_activation_layer as is_activation_layer
from keras_relu.diagnostics.dead_units import summarize as summarize
from keras_relu.diagnostics.gradients import GradientMonitor as GradientMonitor
from keras_relu.diagnostics.gradients import GradientWarning as GradientWarning

__all__ = [
    "DeadUnitMonitor",
    "DeadUnitWarning",
    "GradientMonitor",
    "GradientWarning",
    "activation_stats",
    "is_activation_layer",
    "summarize",
]
