"""specregret theory: BanditSpec / HedgeSpec bounds as vectorised functions.  No torch."""

from __future__ import annotations

from .identities import regret_from_pulls, stopping_time_range, wald_expected_length
from .instance import gaps, hardness, tgd_mean
from .lower import (
    kl_inf,
    kl_inf_primal,
    lai_robbins_constant,
    tgd_closed_form_ratio_limit,
    tgd_closed_form_threshold,
    tgd_lower_constant,
    upper_lower_gap_tgd,
)
from .upper import (
    exp3spec_regret_bound,
    exp3spec_regret_bound_sampling,
    hedgespec_rate_acceptance,
    hedgespec_rate_length,
    ucbspec_pull_bound,
    ucbspec_regret_bound,
)

__all__ = [
    "exp3spec_regret_bound", "exp3spec_regret_bound_sampling", "gaps", "hardness", "kl_inf",
    "kl_inf_primal", "lai_robbins_constant", "tgd_lower_constant", "upper_lower_gap_tgd",
    "tgd_closed_form_ratio_limit", "tgd_closed_form_threshold",
    "regret_from_pulls", "stopping_time_range", "tgd_mean", "ucbspec_pull_bound",
    "ucbspec_regret_bound", "wald_expected_length", "hedgespec_rate_acceptance", "hedgespec_rate_length",
]
