"""Where the workstation's data lives: the work folder, photo files and their splits.

* :mod:`converters.data.workspace` -- the folder outside the repository (``$EDGE_DCT_WORK``)
  holding downloads, photo sets, caches and checkpoints.
* :mod:`converters.data.photos` -- JPEG listings (a folder or a glob), the shared test corpus
  and the Pillow loader of the RGB baseline.
* :mod:`converters.data.splits` -- the photo sets of ``scripts/get_data.sh``, the exclude list
  and the training / held-back split every recipe uses.

Nothing here imports TensorFlow, PyTorch or another room of ``converters``.
"""
