"""Model checkpoints: architecture, settings, head and weights in one torch file.

A checkpoint is a plain dictionary saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (tensors, strings and numbers only: loading one never
runs stored code). Files are written through a temporary sibling and a rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from codesign.architecture import Architecture
from codesign.atomic_io import atomic_path
from codesign.models.build import build_model
from codesign.models.config import ModelConfig
from codesign.models.files import CheckpointError, is_checkpoint, read_model_dict
from codesign.models.heads import TaskModel

CHECKPOINT_FORMAT = "edgetran-checkpoint/1"


def save_checkpoint(model: TaskModel, path: str | Path, meta: Optional[dict] = None) -> Path:
    """Write ``model`` to ``path`` atomically; return the path."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": json.dumps(model.architecture.to_dict()),
        "config": json.dumps(model.config.to_dict()),
        "head": json.dumps(model.head_settings()),
        "meta": json.dumps(meta or {}),
        "state_dict": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> tuple[TaskModel, dict]:
    """Rebuild the model stored at ``path``; return it (eval mode) and its metadata."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an {CHECKPOINT_FORMAT} file")
    arch = Architecture.from_dict(json.loads(payload["architecture"]))
    config = ModelConfig.from_dict(json.loads(payload["config"]))
    head = json.loads(payload["head"])
    model = build_model(arch, head["task"], head.get("num_labels", 2), config, seed=0)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), json.loads(payload["meta"])


def load_model_source(
    path: str | Path, task: str = "classify", num_labels: int = 2, config: Optional[ModelConfig] = None, seed: int = 0
) -> tuple[TaskModel, dict]:
    """A checkpoint as stored, or a model dictionary built fresh (seeded) for ``task``."""
    if is_checkpoint(path):
        return load_checkpoint(path)
    arch = Architecture.from_dict(read_model_dict(path))
    return build_model(arch, task, num_labels, config, seed), {"initialised_from_seed": seed}
