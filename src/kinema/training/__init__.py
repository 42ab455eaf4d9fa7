"""Training: one loop on Accelerate (`train`), typed run configs, and the objectives that families plug in."""

from kinema.training.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    from_dict,
    load_config,
)
from kinema.training.objectives import Family, Objective, get_family, register_family
from kinema.training.trainer import Trainer, TrainingInterrupted, train

__all__ = [
    "ConfigError",
    "Family",
    "Objective",
    "RunConfig",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "from_dict",
    "get_family",
    "load_config",
    "register_family",
    "train",
]
