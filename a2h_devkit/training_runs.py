"""The exact-resume check the training tests share: one run straight through, one stopped halfway and resumed."""
from __future__ import annotations

from pathlib import Path

import torch

from a2h_core.cli import main
from a2h_core.io.weights import read_safetensors


def whole_and_resumed(network: str, options: list[str], steps: int,
                      folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`train NETWORK OPTIONS` for `steps` steps into folder/"whole", and for steps // 2 then `--resume` to `steps`
    into folder/"split"; the two runs' last weights (state dicts). Each command must succeed."""
    commands = ([folder / "whole", "--steps", str(steps), *options], [folder / "split", "--steps", str(steps // 2),
                *options], [folder / "split", "--steps", str(steps), "--resume"])
    for out, *rest in commands:
        code = main(["train", network, "--out", str(out), *rest])
        if code != 0:
            raise AssertionError(f"train {network} --out {out} {' '.join(rest)} exited with {code}")
    return (read_safetensors(folder / "whole" / "last.safetensors")[0],
            read_safetensors(folder / "split" / "last.safetensors")[0])
