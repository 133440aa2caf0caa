"""Value head V(s_t) for the verifiable critic (DESIGN §2).

An unbounded `Linear(dim, 1)` on `norm(h_trunk)`: the model's shared final RMSNorm applied to the
trunk output. Unbounded because TD targets are rewards in [0, 1] plus bootstrapped values; a
sigmoid would saturate and hide drift. It is saved as its own safetensors file so a stage-1 critic
can be paired with any policy checkpoint of the same trunk width.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class ValueHead(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(dim, 1)
        nn.init.zeros_(self.proj.weight)  # V ≡ bias at start: no random value signal
        nn.init.zeros_(self.proj.bias)

    def forward(self, h_normed: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normed trunk state -> (B, T) values, float32."""
        return self.proj(h_normed).squeeze(-1).to(torch.float32, copy=True)  # no view: FSDP2 hooks outputs

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata={"dim": str(self.dim), "format": "wmtp-value-head-v1"})
        path.with_suffix(".json").write_text(json.dumps({"dim": self.dim}) + "\n")

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None) -> ValueHead:
        """Load a head saved by `save`; `dim` (the trunk width) is checked when given."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"value head file not found: {path}")
        state = load_file(str(path))
        expected = {"proj.weight", "proj.bias"}
        if set(state) != expected:
            raise ValueError(f"{path}: keys {sorted(state)}, expected {sorted(expected)}")
        saved_dim = state["proj.weight"].shape[1]
        if dim is not None and saved_dim != dim:
            raise ValueError(f"{path}: proj.weight has width {saved_dim}, the model's trunk has dim {dim}")
        head = cls(saved_dim)
        head.load_state_dict(state)
        return head
