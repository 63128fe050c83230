"""CIFAR-10, CIFAR-100 or any class-folder image set as `tf.data` train and test pipelines.

One call, `load_cifar10()`, finds the data, decodes it once to uint8 arrays, caches those, and
returns batched `tf.data` pipelines with the ResNet paper's augmentation on the train split
(He et al. 2015, section 4.2: 4-pixel zero padding, a random 32x32 crop and a random
horizontal flip). The models normalise their inputs themselves, so images come out as float32
raw pixel values in [0, 255] and labels as sparse int32.

TensorFlow is optional here: without it (the JAX or PyTorch backend alone, as on a GPU
machine with no TensorFlow), Pillow decodes the images and `ArrayBatches`, a
`keras.utils.PyDataset`, makes the batches with NumPy (`engine="numpy"`).

Where the data comes from (`source`, else `$KERAS_RESNETS_DATA`, else a search; the one
table of source kinds is `keras_resnets.data.sources.SOURCES`):

- `"tfds"`: TensorFlow Datasets' `cifar10`, read from TFDS's data dir (`$TFDS_DATA_DIR`, by
  default `~/tensorflow_datasets`), downloaded there if it is not prepared yet.
- `"keras"`: the `keras.datasets.cifar10` download cache (`$KERAS_HOME` or `~/.keras`, in
  `datasets/`): the `cifar-10-batches-py` folder or the `cifar-10-python.tar.gz` archive.
  Any other path to such a folder or archive works too.
- A path to a folder or a tar archive (`.tar`, `.tar.gz`, `.tgz`, `.tar.xz`, `.tar.bz2`) of
  images laid out as `train/<class>/<image>` and `test/<class>/<image>`:
    - a folder with `train/` and `test/` subfolders;
    - an archive whose members are `[prefix/]train/<class>/...` and `[prefix/]test/<class>/...`;
    - a folder holding such archives, whose members are merged: the project's
      `../shared/cifar10/` (`cifar10-train.tar.xz` + `cifar10-test.tar.xz`) is one.
  Class names are the sorted class folder names, and labels index them, as in
  `keras.utils.image_dataset_from_directory`. Images are converted to RGB and must all have
  the same size: resize them beforehand (resizing here would hide a mixed-up data set).
  A folder of class subfolders with no `train/`/`test/` split is refused with an explanation:
  which images to hold out for testing is the user's decision, not something to guess.
- `"cifar10"`, `"cifar100"` (a name from `keras_resnets.data.datasets.DATASETS` that is not
  an existing path): that data set, searched for as below (TFDS's `cifar100`, the Keras
  cache's `cifar-100-python`). CIFAR-100's official `cifar-100-python.tar.gz` (or its
  folder) and image folders of its 100 classes work as paths too, with the fine labels.
- A `.npz` file with `x_train`, `y_train`, `x_test`, `y_test` (and optionally
  `class_names`), such as this module's own cache files.

With neither `source` nor `$KERAS_RESNETS_DATA`, the search tries TFDS's data dir (prepared
data only), then the Keras cache, then a TFDS download. If all fail, `DataSourceError` lists
each place tried and how to point at local data.

What the data is, `Arrays.dataset` (a `datasets.Dataset`: class names, image shape,
normalisation statistics), is told by its class names: CIFAR-10's and CIFAR-100's are
known; any other set gets statistics measured on its training images. `train()` builds the
model's `Normalization` from it, so a CIFAR-100 model gets CIFAR-100's statistics.

Decoded image folders and archives are cached as uncompressed `.npz` files in `cache_dir`
(default `$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`), keyed by the path, size and
modification time of the inputs, so the second run loads in about a second instead of
decoding 60,000 images again.

Example:

```python
from keras_resnets import data
ds = data.load_cifar10("../shared/cifar10", batch_size=128)
model.fit(ds.train, validation_data=ds.test, epochs=...)
```

The modules, one job each: `sources` (the table of source kinds, the search), `images` (image
folders and archives, read in threads), `decode` (TensorFlow's or Pillow's decoder),
`cache` (the decode cache), `pickles` (CIFAR's pickled batches, the Keras cache), `tfds`
(TensorFlow Datasets, offline fast-fail), `augment` (pad-crop-flip, both engines),
`pipeline` (`make_pipeline`, `ArrayBatches`), `engines` (tf.data or NumPy), `datasets` (the
facts about each data set) and `arrays` (`Arrays`, the errors, `balanced_subset`).
"""

import importlib as _importlib

# Loaded on first use (PEP 562): the models import `keras_resnets.data.datasets`, a leaf,
# without loading the sources, the decoders and the pipelines (and with them Keras).
_NAMES = {
    "DATA_ENV_VAR": "arrays",
    "Arrays": "arrays",
    "CorruptImageError": "arrays",
    "DataSourceError": "arrays",
    "balanced_subset": "arrays",
    "pad_crop_flip": "augment",
    "CACHE_ENV_VAR": "cache",
    "CIFAR10_CLASSES": "datasets",
    "CIFAR100_CLASSES": "datasets",
    "DATASETS": "datasets",
    "Dataset": "datasets",
    "resolve_engine": "engines",
    "Datasets": "loading",
    "load_cifar10": "loading",
    "ArrayBatches": "pipeline",
    "make_pipeline": "pipeline",
    "SOURCES": "sources",
    "load_arrays": "sources",
}
_SUBMODULES = (
    "arrays",
    "augment",
    "cache",
    "datasets",
    "decode",
    "engines",
    "images",
    "loading",
    "pickles",
    "pipeline",
    "sources",
    "tfds",
)

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(_importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    if name == "_tensorflow":  # train.py's probe: is TensorFlow installed?
        return _importlib.import_module(f"{__name__}.engines").tensorflow
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_NAMES, *_SUBMODULES])
