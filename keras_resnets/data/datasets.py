"""Facts about the data sets: class names, image shape and normalisation statistics.

A leaf module (NumPy only, no TensorFlow, no Keras): the models import their default
statistics from here, and the data room identifies what it loaded by its class names. Adding
a data set is one `Dataset` record below (plus, for a new on-disk pickle format, its
`PickleLayout`); the sources, the search and `train()` read everything from the record.
"""

import dataclasses
from typing import Optional

import numpy as np

# Per-channel statistics for pixels scaled to [0, 1], RGB order.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# CIFAR-100's training set, computed alike (population statistics of all training pixels);
# the values in common use, e.g. weiaicunzai/pytorch-cifar100 conf/global_settings.py
# (CIFAR100_TRAIN_MEAN, CIFAR100_TRAIN_STD), rounded to four places.
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
# ImageNet statistics as used by torchvision and keras.applications' "torch" mode.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe's ResNets (keras.applications' "caffe" mode): the mean pixel subtracted, no scaling.
CAFFE_MEAN = (123.68 / 255, 116.779 / 255, 103.939 / 255)
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)

# Label order of the original CIFAR-10 batches, TFDS and `keras.datasets` (also alphabetical).
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# CIFAR-100's fine labels, in the order of the official `meta` file's `fine_label_names`
# (also alphabetical, so class folders named after them sort into the same labels).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PickleLayout:
    """How a data set's official Python version is laid out (CIFAR's `*-python.tar.gz`).

    Attributes:
        folder: the folder the archive unpacks to, e.g. "cifar-10-batches-py"; keras.datasets
            keeps it in `~/.keras/datasets/` (Keras 3: inside `<folder>-target/`).
        archive: the official archive's file name.
        train: the pickle files of the train split, in order.
        test: the pickle file of the test split.
        labels: the key of the labels in each pickled dict.
        meta: the pickle file with the class names.
        label_names: the key of the class names in `meta`.
    """

    folder: str
    archive: str
    train: tuple
    test: str
    labels: bytes
    meta: str
    label_names: bytes


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One data set: what a model trained on it needs to know, and where it may be found.

    Attributes:
        name: short name, e.g. "cifar10"; also a source that `load_arrays` searches for.
        title: the name in prose, e.g. "CIFAR-10".
        num_classes: number of classes.
        image_shape: `(height, width, channels)` of its images.
        mean, std: per-channel statistics of the training images, RGB, [0, 1] units: the
            models' `Normalization` layer is made from them.
        class_names: the class names in label order, or None where not recorded here.
        tfds_name: its TensorFlow Datasets name, or None.
        pickles: its `PickleLayout`, or None.
    """

    name: str
    title: str
    num_classes: int
    image_shape: tuple
    mean: tuple
    std: tuple
    class_names: Optional[tuple] = None
    tfds_name: Optional[str] = None
    pickles: Optional[PickleLayout] = None

    def __post_init__(self):
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} "
                f"classes. Received: class_names={self.class_names!r}"
            )

    @property
    def normalization(self):
        """`(mean, std)`, as the builders' `include_preprocessing` takes it."""
        return self.mean, self.std


CIFAR10 = Dataset(
    name="cifar10",
    title="CIFAR-10",
    num_classes=10,
    image_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    class_names=CIFAR10_CLASSES,
    tfds_name="cifar10",
    pickles=PickleLayout(
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test="test_batch",
        labels=b"labels",
        meta="batches.meta",
        label_names=b"label_names",
    ),
)
CIFAR100 = Dataset(
    name="cifar100",
    title="CIFAR-100",
    num_classes=100,
    image_shape=(32, 32, 3),
    mean=CIFAR100_MEAN,
    std=CIFAR100_STD,
    class_names=CIFAR100_CLASSES,
    tfds_name="cifar100",
    pickles=PickleLayout(
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        train=("train",),
        test="test",
        labels=b"fine_labels",
        meta="meta",
        label_names=b"fine_label_names",
    ),
)
IMAGENET = Dataset(
    name="imagenet",
    title="ImageNet",
    num_classes=1000,
    image_shape=(224, 224, 3),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)

DATASETS = {dataset.name: dataset for dataset in (CIFAR10, CIFAR100, IMAGENET)}


def get(name):
    """The `Dataset` named `name`; an unknown name raises ValueError."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Valid: {sorted(DATASETS)}")
    return DATASETS[name]


def identify(class_names, images):
    """The `Dataset` that images with these class names are.

    A known data set whose class names (in label order) and image shape these are; else a
    "custom" one whose statistics are measured on `images` (the training images), so that a
    user's own folder is not normalised with another data set's statistics.
    """
    names = tuple(str(name) for name in class_names)
    shape = tuple(images.shape[1:]) if images is not None else None
    for dataset in DATASETS.values():
        if dataset.class_names == names and shape in (None, dataset.image_shape):
            return dataset
    mean, std = measure_statistics(images) if images is not None else (None, None)
    return Dataset(
        name="custom",
        title="a custom data set",
        num_classes=len(names),
        image_shape=shape,
        mean=mean,
        std=std,
        class_names=names,
    )


def measure_statistics(images, chunk=4096):
    """Per-channel `(mean, std)` of uint8 `images` `[N, H, W, C]`, in [0, 1] units.

    The population statistics over every pixel, as CIFAR's published numbers are, from a
    histogram of each channel's 256 grey levels: exact, fast, and a chunk at a time. A
    constant channel gets the std of one grey level rather than zero, which `Normalization`
    would divide by.
    """
    images = np.asarray(images)
    channels = images.shape[-1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        for c in range(channels):
            counts[c] += np.bincount(part[..., c].ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ levels / total
    variance = counts @ np.square(levels) / total - np.square(mean)
    std = np.sqrt(np.maximum(variance, 1.0))
    return tuple(float(m) / 255 for m in mean), tuple(float(s) / 255 for s in std)
