"""BaselineMTP: every target token weighted 1, correct solutions only (the control)."""

from __future__ import annotations

from wmtp_lightning.experiments.base import MTPModule


class BaselineMTP(MTPModule):
    """Plain multi-token prediction fine-tuning. Pair it with `data.sampling: correct`.

    `token_weights` is the base class's (uniform); this class exists so runs are named by what
    they are and configs select an experiment by class path.
    """
