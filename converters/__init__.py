"""edge_dct workstation toolkit: model zoo (Keras 3), weight ports, TFLite export and benchmarks.

Importing this package imports TensorFlow/Keras; the on-device SDK (``edge_dct``) never does.
"""

from . import dct_frontend, efficientnet_dct, efficientnet_lite, resnet_dct  # noqa: F401  (register the models)
from .export import ExportReport, export
from .imagenet import imagenet_labels
from .metadata import read_metadata
from .profile import Profile, profile
from .registry import ModelConfig, build, get_config, list_models, register_model

__all__ = [
    "ExportReport",
    "ModelConfig",
    "Profile",
    "build",
    "export",
    "get_config",
    "imagenet_labels",
    "list_models",
    "profile",
    "read_metadata",
    "register_model",
]
