"""ImageNet architectures from torchvision, all layers fine-tuned with a new classifier.

mobilenet-v2 follows paper 001's recipe (SGD momentum 0.9, weight decay 4e-5, lr 0.01
×0.94 every 15 epochs, batch 64, random crops of 0.85–1 of the area and flips, dropout);
vgg16 and inception-v3 follow papers 003/004 (Adam 1e-4, flips; paper 003 adds ±10°
rotation and ±10% scale). inception-v3 is built without its auxiliary head.
"""

from __future__ import annotations

from typing import Any

from ferdata.models import ModelPlugin, register_model
from ferdata_plugins._transfer import IMAGENET_NORMALIZE, torchvision_weights

PAPER_001 = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 4e-5, "schedule": "step",
             "step_size": 15, "gamma": 0.94, "batch_size": 64, "epochs": 60, "augment": "crop,flip"}
PAPER_003_004 = {"optimizer": "adam", "lr": 1e-4, "batch_size": 32, "epochs": 30, "augment": "flip,rotate,scale"}


def _mobilenet_v2(num_classes: int, **hp: Any) -> Any:
    import torchvision

    return torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes, dropout=float(hp.get("dropout", 0.5)))


def _mobilenet_v3_small(num_classes: int, **hp: Any) -> Any:
    import torchvision

    return torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes,
                                                 dropout=float(hp.get("dropout", 0.2)))


def _vgg16(num_classes: int, **hp: Any) -> Any:
    import torchvision

    return torchvision.models.vgg16(weights=None, num_classes=num_classes, dropout=float(hp.get("dropout", 0.5)))


def _inception_v3(num_classes: int, **hp: Any) -> Any:
    import torchvision

    return torchvision.models.inception_v3(weights=None, num_classes=num_classes, aux_logits=False,
                                           init_weights=True, dropout=float(hp.get("dropout", 0.5)))


register_model(ModelPlugin(
    name="mobilenet-v2", description="MobileNetV2 (torchvision), paper 001's training recipe", paper="001",
    input_size=224, channels=3, build=_mobilenet_v2, defaults=PAPER_001,
    pretrained=torchvision_weights("MobileNet_V2_Weights.IMAGENET1K_V1"), normalize=IMAGENET_NORMALIZE,
    tags=("transfer",)))
register_model(ModelPlugin(
    name="mobilenet-v3-small", description="MobileNetV3-Small (torchvision), paper 001's training recipe",
    paper="001", input_size=224, channels=3, build=_mobilenet_v3_small, defaults=PAPER_001,
    pretrained=torchvision_weights("MobileNet_V3_Small_Weights.IMAGENET1K_V1"), normalize=IMAGENET_NORMALIZE,
    tags=("transfer",)))
register_model(ModelPlugin(
    name="vgg16", description="VGG16 (torchvision), all layers fine-tuned", paper="004", input_size=224, channels=3,
    build=_vgg16, defaults=PAPER_003_004, pretrained=torchvision_weights("VGG16_Weights.IMAGENET1K_V1"),
    normalize=IMAGENET_NORMALIZE, tags=("transfer", "heavy")))
register_model(ModelPlugin(
    name="inception-v3", description="Inception v3 (torchvision, no auxiliary head), all layers fine-tuned",
    paper="003", input_size=299, channels=3, build=_inception_v3, defaults=PAPER_003_004,
    pretrained=torchvision_weights("Inception_V3_Weights.IMAGENET1K_V1"), normalize=IMAGENET_NORMALIZE,
    tags=("transfer", "heavy")))
