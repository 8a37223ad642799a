"""Model files as the CLI meets them: model dictionaries (JSON) and checkpoints (``.pt``). Torch-free."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIX = ".pt"


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint or model dictionary."""


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` names a checkpoint (by suffix; a model dictionary is JSON)."""
    return Path(path).suffix == CHECKPOINT_SUFFIX


def read_model_dict(path: str | Path) -> Any:
    """The JSON content of a model-dictionary file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a model dictionary or checkpoint") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
