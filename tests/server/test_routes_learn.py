"""/api/models/{m}/learn/step (the Learn article's optimizer step) against plain PyTorch: the
cross-entropy of the top class, its gradient at the first weight, and the loss after one SGD
step on every parameter, recomputed with torch.optim.SGD on a copy of the model."""

from __future__ import annotations

import copy

import pytest
import torch


@pytest.mark.parametrize("name", ["default", "resnet"])
def test_learn_step_matches_torch_sgd(client, registry, name):
    model = registry.entry(name).model
    image = client.get(f"/api/models/{name}").json()["samples"][0]["id"]
    d = client.get(f"/api/models/{name}/learn/step", params={"image": image, "lr": 0.05}).json()
    x = registry.input_batch(name, image)
    net = copy.deepcopy(model.net).eval()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    logits = net(x)
    target = int(logits.argmax())
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([target]))
    loss.backward()
    pname, p = next((n, p) for n, p in net.named_parameters() if n.endswith("weight") and p.dim() >= 2)
    assert (d["parameter"], d["target"]) == (pname, target)
    assert d["w"] == pytest.approx(float(p.detach().view(-1)[0]), abs=1e-7)
    assert d["grad"] == pytest.approx(float(p.grad.view(-1)[0]), rel=1e-4, abs=1e-8)
    assert d["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert d["prob"] == pytest.approx(float(logits.softmax(-1)[0, target]), rel=1e-5)
    opt.step()
    assert d["new_w"] == pytest.approx(float(p.detach().view(-1)[0]), abs=1e-7)
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(net(x), torch.tensor([target]))
    assert d["loss_after"] == pytest.approx(float(after), rel=1e-4, abs=1e-7)
    assert d["loss_after"] < d["loss"]  # a small step down the gradient lowers this image's loss
    # the model served is untouched
    assert float(dict(model.net.named_parameters())[pname].view(-1)[0]) == pytest.approx(d["w"], abs=0)
