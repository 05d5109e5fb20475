"""Models: the tiny demo LM, loading/saving with hashes, the model registry."""

from forget.models.io import load_model, save_model, state_dict_sha256, weights_sha256
from forget.models.registry import ModelRegistry, ModelVersion, read_card

__all__ = ["ModelRegistry", "ModelVersion", "load_model", "read_card", "save_model",
           "state_dict_sha256", "weights_sha256"]
