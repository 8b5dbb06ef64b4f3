"""The resnet50 SAVOS parameter count, against a hand count of its parts."""

from __future__ import annotations

from savos.cli import main
from savos.model import ModelConfig, build_savos


def conv(c_in: int, c_out: int, kh: int, kw: int, bias: bool = True) -> int:
    return c_in * c_out * kh * kw + (c_out if bias else 0)


def hand_count_resnet50_savos(width: int = 256, k: int = 7, r: int = 16) -> dict[str, int]:
    # torchvision ResNet-50 has 25,557,032 parameters; its fc layer (2048 x 1000 + 1000) is dropped, and the
    # first conv gains one input channel: 64 filters of 7 x 7 for the mask.
    encoder = 25_557_032 - (2048 * 1000 + 1000) + 64 * 7 * 7
    # Global convolution block on cat(reference top, target top) = 4096 channels: two paths, each a
    # k x 1 (or 1 x k) conv to `width` then the transposed one, all with bias, no batch norm.
    gcb = 2 * (conv(4096, width, k, 1) + conv(width, width, 1, k))

    def attention(skip: int) -> int:
        refine = conv(skip, width, 3, 3) + conv(width, width, 3, 3)  # two 3x3 convs on F1
        channel = width * (width // r) * 2  # shared MLP, no bias (CBAM)
        spatial = conv(2, 1, 7, 7)  # 7x7 conv over [mean, max]
        return refine + channel + spatial

    return {
        "encoder": encoder,
        "gcb": gcb,
        "att4": attention(1024),
        "att3": attention(512),
        "att2": attention(256),
        "head": conv(width, 2, 3, 3),
    }


def test_resnet50_savos_matches_hand_count() -> None:
    model = build_savos(ModelConfig(backbone="resnet50"), backbone_weights="none")
    expected = hand_count_resnet50_savos()
    actual = {name: sum(p.numel() for p in part.parameters()) for name, part in model.named_children()}
    assert actual == expected
    assert sum(expected.values()) == 45_039_019


def test_info_command_prints_the_total(capsys) -> None:
    assert main(["info", "--backbone", "resnet50"]) == 0
    assert "45,039,019" in capsys.readouterr().out
