"""What the models are: the registry, the model definitions, their input contracts and weights.

* :mod:`~converters.zoo.registry` -- ``@register_model`` builders and one :class:`ModelConfig`
  per model (input contract, labels, licence, speed-table group).
* :mod:`~converters.zoo.input_spec` -- InputSpec v1 dictionaries of DCT and pixel models.
* :mod:`~converters.zoo.resnet_dct`, :mod:`~converters.zoo.resnet_blocks` -- the paper's DCT
  ResNet-50 variants and the RGB/YCbCr baselines.
* :mod:`~converters.zoo.efficientnet_lite` -- EfficientNet-Lite0 (RGB baseline and teacher),
  its blocks and the ImageNet weight port.
* :mod:`~converters.zoo.efficientnet_dct` -- EfficientNet-Lite0-DCT students.
* :mod:`~converters.zoo.dct_frontend` -- the exact IDCT/colour front end (the default model).
* :mod:`~converters.zoo.torch_legacy` -- reads PyTorch checkpoints without PyTorch.
* :mod:`~converters.zoo.imagenet` -- ImageNet-1k synsets and unique class names.
* :mod:`~converters.zoo.profile` -- parameter and MAC counts.

Importing this package registers every model.
"""

from . import dct_frontend, efficientnet_dct, efficientnet_lite, resnet_dct  # noqa: F401  (register the models)
from .imagenet import imagenet_labels, imagenet_synsets
from .profile import Profile, profile
from .registry import ModelConfig, accepted_overrides, build, get_config, list_models, register_model, speed_groups

__all__ = [
    "ModelConfig",
    "Profile",
    "accepted_overrides",
    "build",
    "get_config",
    "imagenet_labels",
    "imagenet_synsets",
    "list_models",
    "profile",
    "register_model",
    "speed_groups",
]
