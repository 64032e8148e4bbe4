"""zoneimpact: counterfactual econometrics of place-based policy.

Difference-in-differences (TWFE, event studies, staggered-adoption-robust DiD) and synthetic
control (Abadie SC, synthetic DiD, augmented SC) for zone panels, with spillover-aware
estimands that separate concentration (displacement from neighbours) from net creation.
"""

from .errors import ZoneImpactError
from .panel import Panel, read_panel
from .results import EstimationResult

__version__ = "0.1.0"

__all__ = ["EstimationResult", "Panel", "ZoneImpactError", "__version__", "read_panel"]
