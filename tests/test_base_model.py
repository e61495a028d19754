"""Tests for the hand-written ResNet18 base model."""

import ast
import importlib.util
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

MODEL_PATH = Path(__file__).resolve().parents[1] / "base_model" / "resnet18.py"
PRM = {"lr": 0.01, "momentum": 0.9, "dropout": 0.2}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def module():
    spec = importlib.util.spec_from_file_location("base_resnet18", MODEL_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_net(module, in_shape=(2, 3, 32, 32), num_classes=10):
    return module.Net(in_shape, (num_classes,), dict(PRM), CPU)


def test_supported_hyperparameters(module):
    assert module.supported_hyperparameters() == {"lr", "momentum", "dropout"}

    tree = ast.parse(MODEL_PATH.read_text())
    funcs = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name == "supported_hyperparameters"
    ]
    assert len(funcs) == 1
    first = funcs[0].body[0]
    assert isinstance(first, ast.Return)
    assert isinstance(first.value, ast.Set)
    assert all(isinstance(elt, ast.Constant) for elt in first.value.elts)


def test_torchvision_state_dict_loads_strictly_and_matches(module):
    torch.manual_seed(0)
    reference = resnet18(weights=None, num_classes=10)
    net = make_net(module)
    net.load_state_dict(reference.state_dict(), strict=True)
    reference.eval()
    net.eval()

    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        actual = net(x)
    torch.testing.assert_close(actual, expected)


def test_forward_shapes(module):
    torch.manual_seed(0)
    net = make_net(module)
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    gray = make_net(module, in_shape=(2, 1, 32, 32))
    with torch.no_grad():
        assert gray(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_train_setup_and_learn(module):
    torch.manual_seed(0)
    net = make_net(module)
    net.train_setup(dict(PRM))

    assert isinstance(net.optimizer, torch.optim.SGD)
    group = net.optimizer.param_groups[0]
    assert group["lr"] == PRM["lr"]
    assert group["momentum"] == PRM["momentum"]

    before = [p.detach().clone() for p in net.parameters()]
    batches = [
        (torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))) for _ in range(3)
    ]
    net.learn(batches)
    after = list(net.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert not torch.equal(before[-1], after[-1])

    assert "lr_scheduler" not in MODEL_PATH.read_text()
