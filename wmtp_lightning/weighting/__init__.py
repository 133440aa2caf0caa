"""Token-weighting math as small pure functions (no Lightning). Notation: see `losses.py`."""

from wmtp_lightning.weighting.losses import (
    IGNORE_INDEX,
    head_weights,
    mtp_targets,
    mtp_token_ce,
    response_bounds,
    shift_targets,
    token_ce,
    weighted_mtp_loss,
)
from wmtp_lightning.weighting.rho1 import ce_at_tokens, rho1_per_head_scores, rho1_token_scores, soft_weights, topk_mask
from wmtp_lightning.weighting.stats import masked_stats, weight_stats
from wmtp_lightning.weighting.td import td_errors, td_errors_horizon, td_weights
from wmtp_lightning.weighting.value import (
    binary_auc,
    clipped_value_loss,
    cosine_drift,
    explained_variance,
    final_values,
    mc_value_targets,
    td_lambda_value_targets,
    value_state_mask,
)

__all__ = [
    "IGNORE_INDEX",
    "binary_auc",
    "ce_at_tokens",
    "clipped_value_loss",
    "cosine_drift",
    "explained_variance",
    "final_values",
    "head_weights",
    "masked_stats",
    "mc_value_targets",
    "mtp_targets",
    "mtp_token_ce",
    "response_bounds",
    "rho1_per_head_scores",
    "rho1_token_scores",
    "shift_targets",
    "soft_weights",
    "td_errors",
    "td_errors_horizon",
    "td_lambda_value_targets",
    "td_weights",
    "token_ce",
    "topk_mask",
    "value_state_mask",
    "weight_stats",
    "weighted_mtp_loss",
]
