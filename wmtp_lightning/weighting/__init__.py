"""Token-weighting math as small pure functions (no Lightning). Notation: see `losses.py`.

The two recipes, `critic_weights` (td.py) and `rho1_weights` (rho1.py), are what the experiments
and the analysis notebook call; the rest are their parts, each tested on hand-computed tensors.
"""

from wmtp_lightning.weighting.losses import (
    IGNORE_INDEX,
    head_weights,
    mtp_targets,
    mtp_token_ce,
    response_bounds,
    shift_targets,
    target_counts,
    token_ce,
    weighted_mtp_loss,
)
from wmtp_lightning.weighting.rho1 import (
    Rho1Weights,
    ce_at_tokens,
    rho1_per_head_scores,
    rho1_token_scores,
    rho1_weights,
    topk_mask,
    topk_mask_per_head,
)
from wmtp_lightning.weighting.stats import masked_stats, weight_stats
from wmtp_lightning.weighting.td import (
    CriticWeights,
    after_first_drop,
    critic_weights,
    cumulative_td,
    td_errors,
    td_errors_horizon,
)
from wmtp_lightning.weighting.transforms import exp_weights, whiten
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
    "CriticWeights",
    "Rho1Weights",
    "after_first_drop",
    "binary_auc",
    "ce_at_tokens",
    "clipped_value_loss",
    "cosine_drift",
    "critic_weights",
    "cumulative_td",
    "exp_weights",
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
    "rho1_weights",
    "shift_targets",
    "target_counts",
    "td_errors",
    "td_errors_horizon",
    "td_lambda_value_targets",
    "token_ce",
    "topk_mask",
    "topk_mask_per_head",
    "value_state_mask",
    "weight_stats",
    "weighted_mtp_loss",
    "whiten",
]
