"""One network of every registry family exports, and its SavedModel's signatures agree with
the Keras model (issue: "every network in the registry exports and verifies this way")."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_resnets
from keras_resnets.export import export

# One registry name per family; ImageNet families at a small input to keep the test quick.
FAMILIES = [
    ("resnet", {}),                                  # the article's nets
    ("highway", {}),
    ("densenet", {}),
    ("plain", {}),
    ("cifar_resnet", {"depth": 20}),                 # He et al. 2015 CIFAR (and cifar_plain)
    ("cifar_preact_resnet", {"depth": 110}),         # He et al. 2016
    ("cifar_densenet_bc", {"depth": 100}),           # Huang et al. 2017 CIFAR
    ("cifar_highway", {"depth": 11}),                # Srivastava et al. 2015
    ("resnet18", {"input_shape": (32, 32, 3)}),      # ImageNet v1
    ("resnet50_v2", {"input_shape": (32, 32, 3)}),   # ImageNet v2
    ("densenet121", {"input_shape": (32, 32, 3)}),   # ImageNet DenseNet
]


@pytest.mark.parametrize("name, kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_exports_and_serves(name, kwargs, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_resnets.build(name, **kwargs)
    path = export(model, tmp_path / name)
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) >= {"serving_default", "serving_bytes"}

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2,) + model.input_shape[1:]).astype("uint8")
    expected = model.predict(images.astype("float32"), verbose=0)
    got = loaded.signatures["serving_default"](images=tf.constant(images, tf.float32))
    np.testing.assert_allclose(got["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["classes"].numpy(), expected.argmax(-1))

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")  # lossless: same pixels back
        encoded.append(buffer.getvalue())
    from_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(from_bytes["probabilities"].numpy(), expected, rtol=1e-4,
                               atol=1e-5)
