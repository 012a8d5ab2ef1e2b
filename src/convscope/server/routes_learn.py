"""The one number the Learn articles need that no other endpoint has: one optimizer step.

The loss and optimizer article shows ``w − lr · g`` on the learner's own model and image.
The gradient ``g`` of the cross-entropy loss with respect to a weight is not in the trace
(a forward pass), so this endpoint computes it: the loss of the current prediction for
its top class (as if that class were the label), its gradient with respect to the model's
first weight, and the loss after one plain SGD step on every parameter. The model is not
changed: the step is taken on copies of its parameters (``torch.func.functional_call``).
"""

from __future__ import annotations

from typing import Any

import torch
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from ..errors import ConvscopeError
from .context import ServerContext


def first_weight(net: torch.nn.Module) -> tuple[str, torch.Tensor]:
    """The model's first weight matrix or kernel (a parameter named ``*weight`` with 2+ axes)."""
    for name, p in net.named_parameters():
        if name.endswith("weight") and p.dim() >= 2:
            return name, p
    for name, p in net.named_parameters():
        return name, p
    raise ConvscopeError("this model has no parameters to take a step on")


def sgd_step(net: torch.nn.Module, x: torch.Tensor, ends_with_softmax: bool, lr: float) -> dict[str, Any]:
    """Cross-entropy of the top class, its gradient at the first weight, and one SGD step.

    ``ends_with_softmax``: the net's output is already probabilities (CNN Explainer's Tiny VGG),
    so the loss is −log of the output rather than cross-entropy of logits.
    """
    params = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    buffers = {n: b for n, b in net.named_buffers()}

    def forward(values: dict[str, torch.Tensor]) -> torch.Tensor:
        out = torch.func.functional_call(net, {**values, **buffers}, (x,))
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise ConvscopeError("this model's output is not a (batch, classes) score tensor")
        return out.float()

    with torch.enable_grad():
        out = forward(params)
        probs = out[0] if ends_with_softmax else out[0].softmax(-1)
        target = int(probs.argmax())
        loss = (
            -torch.log(probs[target])
            if ends_with_softmax
            else torch.nn.functional.cross_entropy(out, torch.tensor([target]))
        )
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    name, _ = first_weight(net)
    g = dict(zip(params, grads))[name]
    w = params[name].detach()
    index = [0] * w.dim()
    stepped = {n: (p.detach() - lr * gr if gr is not None else p.detach()) for (n, p), gr in zip(params.items(), grads)}
    with torch.no_grad():
        after_out = forward(stepped)
        after = after_out[0].log() if ends_with_softmax else after_out[0].log_softmax(-1)
        loss_after = float(-after[target])
    grad = float(g[tuple(index)]) if g is not None else 0.0
    return {
        "parameter": name,
        "index": index,
        "shape": list(w.shape),
        "w": float(w[tuple(index)]),
        "grad": grad,
        "lr": lr,
        "new_w": float(w[tuple(index)]) - lr * grad,
        "target": target,
        "prob": float(probs[target].detach()),
        "loss": float(loss.detach()),
        "loss_after": loss_after,
    }


def router(ctx: ServerContext) -> APIRouter:
    reg = ctx.registry
    r = APIRouter(tags=["learn"])

    @r.get(
        "/api/models/{model}/learn/step",
        summary="One SGD step on this image: the loss of its top class, the gradient at the first weight, the loss after",
    )
    async def learn_step(
        model: str,
        image: str = Query(..., description="a sample or upload id"),
        lr: float = Query(0.01, gt=0, le=10, description="the learning rate of the step"),
    ) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            te = reg.trace(model, image)
            x = reg.input_batch(model, image)
            d = sgd_step(te.model.net, x, te.trace.layers[-1].kind == "softmax", lr)
            d["target_name"] = te.model.class_name(d["target"])
            return d

        return await run_in_threadpool(work)

    return r
