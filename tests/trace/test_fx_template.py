"""Records filled from the compiled runner's template carry every LayerRecord field.

The template used to rebuild records positionally from a hand-kept list of fields; it now
copies the recorded record with ``dataclasses.replace``, so these checks walk
``dataclasses.fields(LayerRecord)`` rather than a list that could fall behind.
"""

from __future__ import annotations

import dataclasses

import torch

from convscope.models.reference_nets import resnet18_shaped
from convscope.trace import fx_trace, trace
from convscope.trace.records import LayerRecord

TENSORS = {"inputs_tensors", "output"}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    return a == b


def test_template_records_equal_the_interpreters_field_by_field():
    torch.manual_seed(0)
    net = resnet18_shaped(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    runs = [trace(net, x) for _ in range(3)]  # interpreter, compiled (records the template), template
    templates = fx_trace._CACHE[net][1].compiled.templates
    assert templates and all(t is not None for t in templates.values())
    first = runs[0]
    for other in runs[1:]:
        assert first.names == other.names
        for a, b in zip(first.layers, other.layers):
            for f in dataclasses.fields(LayerRecord):
                va, vb = getattr(a, f.name), getattr(b, f.name)
                if f.name == "output":
                    torch.testing.assert_close(va, vb, rtol=0, atol=0)
                elif f.name == "inputs_tensors":
                    assert len(va) == len(vb)
                    for ta, tb in zip(va, vb):
                        torch.testing.assert_close(ta, tb, rtol=0, atol=0)
                else:
                    assert _same(va, vb), (a.name, f.name, va, vb)


def test_records_filled_from_the_template_are_copies():
    """Changing one trace's record (a notebook user may) leaves the next trace's records alone."""
    torch.manual_seed(0)
    net = resnet18_shaped(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    trace(net, x)
    trace(net, x)
    filled = trace(net, x)
    filled.layers[1].params["stride"] = "changed"
    filled.layers[1].inputs.append("changed")
    again = trace(net, x)
    assert again.layers[1].params.get("stride") != "changed" and "changed" not in again.layers[1].inputs
