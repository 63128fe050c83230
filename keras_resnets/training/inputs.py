"""The data of a training run: the arrays (with `train_limit`/`test_limit`), the steps of an
epoch, and the training and test pipelines, all through `keras_resnets.data`'s public API."""

import typing

from keras_resnets import data as data_lib

TEST_BATCH_SIZE = 256


class TrainingData(typing.NamedTuple):
    """The arrays a run trains and tests on, with the data set's class names and source."""

    x_train: typing.Any
    y_train: typing.Any
    x_test: typing.Any
    y_test: typing.Any
    class_names: tuple
    source: str
    dataset: typing.Any = None  # the data's `keras_resnets.data.Dataset` record


def load(source, *, train_limit=None, test_limit=None):
    """The arrays of `source` (see `keras_resnets.data.load_arrays`), each split cut to a
    class-balanced subset of `train_limit` / `test_limit` images where given."""
    arrays = data_lib.load_arrays(source)
    x_train, y_train, x_test, y_test = arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test
    if train_limit is not None:
        x_train, y_train = data_lib.balanced_subset(x_train, y_train, train_limit)
    if test_limit is not None:
        x_test, y_test = data_lib.balanced_subset(x_test, y_test, test_limit)
    return TrainingData(
        x_train, y_train, x_test, y_test, arrays.class_names, arrays.source, arrays.dataset
    )


def normalization(valid_arguments, data):
    """`include_preprocessing` as the data's `(mean, std)` where the builder takes it: the
    model normalises with the statistics of the data it trains on (CIFAR-100's, a custom
    set's measured ones), not with those its registry entry names."""
    if data.dataset is None or "include_preprocessing" not in (valid_arguments or ()):
        return {}
    return {"include_preprocessing": data.dataset.normalization}


def model_kwargs_for(model_kwargs, data):
    """The builder arguments with the data's `input_shape` and `classes`: they may be given,
    but must fit the data."""
    model_kwargs = dict(model_kwargs)
    image_shape, class_names = data.x_train.shape[1:], data.class_names
    if model_kwargs.get("input_shape") is not None:
        shape = tuple(model_kwargs["input_shape"])
        if len(shape) != len(image_shape) or any(
            given is not None and given != size for given, size in zip(shape, image_shape)
        ):
            raise ValueError(
                f"input_shape={shape} does not fit the data's {tuple(image_shape)} images "
                f"(None fits any size). Received: input_shape={model_kwargs['input_shape']!r}"
            )
        model_kwargs["input_shape"] = shape
    if "classes" in model_kwargs and model_kwargs["classes"] != len(class_names):
        raise ValueError(
            f"classes={model_kwargs['classes']!r}, but the data has {len(class_names)} classes "
            f"({', '.join(class_names)}). Received: classes={model_kwargs['classes']!r}"
        )
    return model_kwargs


def steps_per_epoch(num_images, batch_size, cap=None, *, default_from=None):
    """Full batches of an epoch, at most `cap`. `default_from`: the recipe whose batch size
    `batch_size` is, named in the error where not even one batch fits."""
    full_steps = num_images // batch_size
    if full_steps < 1:
        default = f" (the {default_from} recipe's)" if default_from else ""
        raise ValueError(
            f"batch_size={batch_size}{default} is larger than the {num_images} training "
            f"images: pass a smaller batch size. Received: batch_size={batch_size}"
        )
    return full_steps if cap is None else min(cap, full_steps)


def pipelines(data, *, batch_size, seed, first_epoch, steps_per_epoch, engine):
    """The training stream (shuffled and augmented by (seed, epoch), from `first_epoch` on)
    and the test pipeline.

    The training stream is indexed by epoch, so a resumed run sees exactly the batches the
    uninterrupted run would have seen from `first_epoch` on.
    """
    train = data_lib.make_pipeline(
        data.x_train,
        data.y_train,
        batch_size=batch_size,
        training=True,
        seed=seed,
        first_epoch=first_epoch,
        steps_per_epoch=steps_per_epoch,
        engine=engine,
    )
    test = data_lib.make_pipeline(
        data.x_test, data.y_test, batch_size=TEST_BATCH_SIZE, training=False, engine=engine
    )
    return train, test


def epoch_callbacks(train):
    """The callbacks the training stream needs: a NumPy stream (`ArrayBatches`) follows fit's
    epoch, resumes included; tf.data needs none."""
    return [train.epoch_callback()] if isinstance(train, data_lib.ArrayBatches) else []
