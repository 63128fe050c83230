"""What the CIFAR-10 input pipeline costs a training run, measured on the real data.

    python -m benchmarks pipeline --model cifar_resnet20 --batch-size 128 --data ../shared/cifar10

Three numbers: the pipeline alone (shuffle, gather, pad-crop-flip, batches per second with
no model), and `model.fit` with the real training step of the `fast` recipe (weight decay,
label smoothing) fed either by that pipeline or by one batch held in memory, interleaved.
On 2 cores the pipeline's threads share the CPU with the model, so its cost is the
difference between the last two.
"""

import time

from benchmarks import baselines, timing


def run(
    model="cifar_resnet20",
    *,
    batch_size=128,
    data=None,
    steps=20,
    repeats=5,
    warmup_steps=1,
    precision="float32",
):
    """Returns a JSON-ready dict: pipeline images/s, and fit images/s with and without it."""
    import keras
    import tensorflow as tf

    from keras_resnets import data as data_lib
    from keras_resnets import recipes

    arrays = data_lib.load_arrays(data)
    steps_per_epoch = len(arrays.x_train) // batch_size
    pipeline = data_lib.make_pipeline(
        arrays.x_train,
        arrays.y_train,
        batch_size=batch_size,
        training=True,
        seed=0,
        first_epoch=0,
        steps_per_epoch=steps_per_epoch,
    )
    alone = benchmark_pipeline(pipeline, steps=steps * repeats, warmup=2)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        net = baselines.ours(model, input_shape=arrays.x_train.shape[1:], classes=10)
    finally:
        keras.config.set_dtype_policy(previous)
    net.compile(**recipes.get("fast").compile_kwargs(net, steps_per_epoch=steps_per_epoch))
    in_memory = tf.data.Dataset.from_tensors(next(iter(pipeline))).repeat()
    feeds = {"pipeline": pipeline, "in_memory": in_memory}

    def fit_on(ds):
        return lambda: net.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)

    fits = {label: fit_on(ds) for label, ds in feeds.items()}
    for fit in fits.values():
        timing.warm_up(fit, warmup_steps)
    samples = timing.interleaved(fits, steps=1, repeats=repeats)
    train = {
        label: timing.summarize([s / steps for s in seconds], batch_size)
        for label, seconds in samples.items()
    }
    ratio = train["pipeline"]["images_per_second"] / train["in_memory"]["images_per_second"]
    return {
        "kind": "pipeline",
        "model": model,
        "batch_size": batch_size,
        "precision": precision,
        "steps": steps,
        "repeats": repeats,
        "data": arrays.source,
        "pipeline_images_per_second": alone,
        "train": train,
        "pipeline_cost": 1.0 - ratio,
    }


def benchmark_pipeline(ds, steps=50, *, warmup=1):
    """Iterates `ds` and returns its throughput in images per second.

    Args:
        ds: an `ArrayBatches`, or a `tf.data.Dataset` of batches: `(images, ...)` tuples,
            dicts or tensors.
        steps: number of batches timed. The dataset is repeated if it is shorter.
            Defaults to `50`.
        warmup: batches read before timing starts (pipeline start-up, buffer filling).
            Defaults to `1`.

    Returns:
        Images per second, as a float.
    """
    from keras_resnets import data as data_lib

    if isinstance(ds, data_lib.ArrayBatches):
        iterator = (ds[i % len(ds)] for i in range(warmup + steps))
    else:
        iterator = iter(ds.repeat())
    for _ in range(warmup):
        next(iterator)
    count = 0
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
        if isinstance(batch, dict):
            batch = next(iter(batch.values()))
        elif isinstance(batch, (tuple, list)):
            batch = batch[0]
        count += int(batch.shape[0])
    return count / (time.perf_counter() - start)
