"""The three experiments: one shallow base module and a subclass per weighting scheme."""

from wmtp_lightning.experiments.base import MTPModule, Weights
from wmtp_lightning.experiments.baseline import BaselineMTP
from wmtp_lightning.experiments.rho1 import Rho1MTP
from wmtp_lightning.experiments.verifiable_critic import VerifiableCriticMTP

__all__ = ["BaselineMTP", "MTPModule", "Rho1MTP", "VerifiableCriticMTP", "Weights"]
