"""The one seed of a run.

A run has exactly one seed: `seed_everything` in its config. LightningCLI seeds every RNG with it
before building anything and exports it as `PL_GLOBAL_SEED` (Lightning's documented variable,
which it also uses to seed DataLoader workers); model initialisation, the data selection, the
per-rank RNG streams and sampling during evaluation all derive from it through `run_seed()`.
"""

from __future__ import annotations

import os


def run_seed() -> int:
    """`seed_everything` of the current run; 0 outside a seeded run (e.g. a module built by hand)."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))
