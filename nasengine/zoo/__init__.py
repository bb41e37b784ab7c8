"""Published cells (NASNet-A, AmoebaNet-A, PNASNet-5, DARTS, ENAS), network presets at the papers'
sizes, and the one resolver of a name, a genotype text or a stored trial."""

from nasengine.zoo.presets import PRESETS, network_settings, published_settings
from nasengine.zoo.published import PAPER_FIGURES, PUBLISHED, get_published
from nasengine.zoo.resolve import Resolved, fitting_space, resolve_text, resolve_trial, trial_genotype

__all__ = ["PAPER_FIGURES", "PRESETS", "PUBLISHED", "Resolved", "fitting_space", "get_published", "network_settings",
           "published_settings", "resolve_text", "resolve_trial", "trial_genotype"]
