"""``convscope summary`` of a bare module (file.py:factory@weights.pt) that only takes 28x28: the
guessed 224x224 fails, and the one-line error says the size was guessed and names summary's
own --size (it was a bare 'mat1 and mat2 shapes cannot be multiplied'); --size 28 28 then works."""

from __future__ import annotations

import torch

from convscope.cli.main import main

NET = """from torch import nn


def make():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(784, 10))
"""


def test_guessed_size_points_to_size(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet.py").write_text(NET)
    factory: dict = {}
    exec(NET, factory)  # the same net as the file, for its weights
    torch.save(factory["make"]().state_dict(), tmp_path / "w.pt")
    assert main(["summary", "--model", "mynet.py:make@w.pt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mat1 and mat2" in err
    assert "input 1x224x224 was guessed" in err and "--size H W" in err
    assert main(["summary", "--model", "mynet.py:make@w.pt", "--size", "28", "28"]) == 0
    out = capsys.readouterr().out
    assert "(1, 4, 14, 14)" in out and "Total params: 7,890" in out  # 1*4*9+4 + 784*10+10
