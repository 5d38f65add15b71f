"""Parameter counts of torchvision's reference architectures, for the zoo tests
(`tests/zoo.rs`). Prints `name count` lines, and for ResNet-18 the output shape of every stage
on a 224×224 input.

Run: /tmp/ref/bin/pip install --no-deps torchvision   # into the throwaway venv, once
     /tmp/ref/bin/python tools/torchvision_counts.py
"""
import torch
import torchvision.models as models



def alexnet_original():
    """AlexNet as in the paper: two towers as groups=2 on conv2, conv4, conv5; LRN has no
    parameters. torchvision has no such model, so it is written out here."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, 1000),
    )


for name, build in [
    ("alexnet", models.alexnet),
    ("vgg16", models.vgg16),
    ("resnet18", models.resnet18),
    ("resnet50", models.resnet50),
    ("googlenet", lambda: models.googlenet(aux_logits=False, init_weights=False)),
    ("googlenet_aux", lambda: models.googlenet(aux_logits=True, init_weights=False)),
    ("googlenet_aux1_head", lambda: models.googlenet(aux_logits=True, init_weights=False).aux1),
    ("googlenet_aux2_head", lambda: models.googlenet(aux_logits=True, init_weights=False).aux2),
    ("alexnet_original_two_groups", lambda: alexnet_original()),
]:
    net = build()
    print(name, sum(p.numel() for p in net.parameters()))

net = models.resnet18().eval()
x = torch.zeros(1, 3, 224, 224)
for stage in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"]:
    x = getattr(net, stage)(x)
    print("resnet18." + stage, list(x.shape[1:]))
