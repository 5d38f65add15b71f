"""Parameter counts of torchvision's reference architectures, for the zoo tests
(`tests/zoo.rs`). Prints `name count` lines, and for ResNet-18 the output shape of every stage
on a 224×224 input.

Run: /tmp/ref/bin/pip install --no-deps torchvision   # into the throwaway venv, once
     /tmp/ref/bin/python tools/torchvision_counts.py
"""
import torch
import torchvision.models as models

for name, build in [
    ("alexnet", models.alexnet),
    ("vgg16", models.vgg16),
    ("resnet18", models.resnet18),
    ("resnet50", models.resnet50),
    ("googlenet", lambda: models.googlenet(aux_logits=False, init_weights=False)),
    ("googlenet_aux", lambda: models.googlenet(aux_logits=True, init_weights=False)),
]:
    net = build()
    print(name, sum(p.numel() for p in net.parameters()))

net = models.resnet18().eval()
x = torch.zeros(1, 3, 224, 224)
for stage in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"]:
    x = getattr(net, stage)(x)
    print("resnet18." + stage, list(x.shape[1:]))
