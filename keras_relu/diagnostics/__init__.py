"""Diagnostics for ReLU-family networks: what dies, and why; and bringing it back.

- `dead_units`: dead and inactive units, sparsity and saturation of every
  activation (`activation_stats`, `summarize`, `DeadUnitMonitor`).
- `revive`: ReDo's recycling of dead units, once (`revive_dead_units`, which
  returns a `RevivalReport`) or during training (`ReviveDeadUnits`).
- `probes`: random probes, stratified by class (`sample_probe`, `probe_rows`), so
  that no figure is taken on one class of an ordered data set.
- `gradients`: gradient norms and update ratios per layer during `fit`
  (`GradientMonitor`, `GradientWarning`).
"""

from keras_relu.diagnostics.dead_units import DeadUnitMonitor as DeadUnitMonitor
from keras_relu.diagnostics.dead_units import DeadUnitWarning as DeadUnitWarning
from keras_relu.diagnostics.dead_units import NonFiniteProbeWarning as NonFiniteProbeWarning
from keras_relu.diagnostics.dead_units import (
    UnmeasuredActivationWarning as UnmeasuredActivationWarning,
)
from keras_relu.diagnostics.dead_units import activation_stats as activation_stats
from keras_relu.diagnostics.dead_units import is_activation_layer as is_activation_layer
from keras_relu.diagnostics.dead_units import summarize as summarize
from keras_relu.diagnostics.gradients import GradientMonitor as GradientMonitor
from keras_relu.diagnostics.gradients import GradientWarning as GradientWarning
from keras_relu.diagnostics.probes import probe_rows as probe_rows
from keras_relu.diagnostics.probes import sample_probe as sample_probe
from keras_relu.diagnostics.revive import RevivalReport as RevivalReport
from keras_relu.diagnostics.revive import ReviveDeadUnits as ReviveDeadUnits
from keras_relu.diagnostics.revive import revive_dead_units as revive_dead_units

__all__ = [
    "DeadUnitMonitor",
    "DeadUnitWarning",
    "GradientMonitor",
    "GradientWarning",
    "NonFiniteProbeWarning",
    "RevivalReport",
    "ReviveDeadUnits",
    "UnmeasuredActivationWarning",
    "activation_stats",
    "is_activation_layer",
    "probe_rows",
    "revive_dead_units",
    "sample_probe",
    "summarize",
]
