"""Fixtures for the explorer: a registry of small models, a TestClient, and a live server."""

from __future__ import annotations


import pytest
import torch

from convscope.models import Model, Preprocessing, load_model
from convscope.models.reference_nets import FunctionalCNN, resnet18_shaped

CLASSES = [f"class {i}" for i in range(10)]


def small_loader(spec: str) -> Model:
    """'functional' (add + concat, 3x32x32) and 'resnet' (BatchNorm, residuals) built here; the rest by load_model."""
    torch.manual_seed(0)
    if spec == "functional":
        return Model(FunctionalCNN().eval(), classes=CLASSES, preprocessing=Preprocessing(size=(32, 32)),
                     name="functional")
    if spec == "resnet":
        net = resnet18_shaped(num_classes=10).eval()
        for m in net.modules():  # non-trivial running statistics, so batchnorm is not the identity
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        return Model(net, classes=CLASSES, preprocessing=Preprocessing(size=(32, 32)), name="resnet")
    if spec == "fcn":  # no classifier head: the output is a map, not class scores
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        return Model(net.eval(), preprocessing=Preprocessing(size=(32, 32)), name="fcn")
    return load_model(spec)


@pytest.fixture(scope="session")
def registry():
    from convscope.server import Registry

    return Registry(["default", "functional", "resnet"], loader=small_loader)


@pytest.fixture(scope="session")
def client(registry):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    with TestClient(create_app(registry=registry)) as c:
        yield c
