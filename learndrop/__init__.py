"""Learn&Drop: train CNNs faster by dropping the layers that have stopped learning.

The library never imports Streamlit; the dashboard (app.py, pages/) is a thin reader on top of it.
"""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

from .config import PolicyConfig, RunConfig
from .errors import LearnDropError
from .method.controller import LearnDrop
from .method.dropping import param_groups
from .models import UnitNetwork, create_model, list_models, units
from .runs.store import RunStore
from .training.control import TrainingControl

__all__ = ["LearnDrop", "LearnDropError", "PolicyConfig", "RunConfig", "RunStore", "TrainingControl",
           "UnitNetwork", "__version__", "create_model", "list_models", "param_groups", "train", "units"]


def __getattr__(name: str):
    if name == "train":
        from .training.loop import train

        return train
    raise AttributeError(name)
