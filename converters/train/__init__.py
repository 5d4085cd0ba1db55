"""How the models learn: teacher, targets, distillation, quantization-aware fine-tuning, recipes.

* :mod:`~converters.train.crops` -- crop windows and the teacher's pixel view of them (the
  student reads the same windows through ``edge_dct.prepare``: train and serve identically).
* :mod:`~converters.train.teacher` -- the EfficientNet-Lite0 RGB teacher in two LiteRT halves.
* :mod:`~converters.train.targets` -- the teacher's answers on every training crop, once.
* :mod:`~converters.train.evaluation` -- agreement with the teacher, bundle fidelity.
* :mod:`~converters.train.torch_graph` -- the PyTorch twin of a Keras model.
* :mod:`~converters.train.distill` -- distillation of DCT students (config: :class:`DistillConfig`).
* :mod:`~converters.train.qat` -- quantization-aware fine-tuning through an int8 simulation.
* :mod:`~converters.train.default_model` -- the recipe of the embedded default model.

Every command runs as ``python -m converters <command>`` (see ``python -m converters --help``).
Nothing is imported here: PyTorch is needed only by the modules that train.
"""
