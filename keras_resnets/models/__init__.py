"""Model families; importing this package registers every builder."""

from keras_resnets.models import article, densenet, highway, resnet  # noqa: F401 (registers)
from keras_resnets.models.article import article_net
from keras_resnets.models.densenet import cifar_densenet, cifar_densenet_bc, imagenet_densenet
from keras_resnets.models.highway import cifar_highway
from keras_resnets.models.registry import (
    Weights,
    build,
    get_builder,
    get_info,
    list_models,
    register,
)
from keras_resnets.models.resnet import cifar_resnet_family, imagenet_resnet
