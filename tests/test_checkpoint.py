from __future__ import annotations

from pathlib import Path

import pytest
import torch

from savos.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from savos.model import SAVOS, ModelConfig, build_savos
from tests.conftest import TINY


def outputs(model: SAVOS) -> torch.Tensor:
    torch.manual_seed(0)
    image, mask = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        return model.eval()(image, mask, image, mask)


def test_round_trip_gives_the_same_outputs_and_meta(tiny_model: SAVOS, tmp_path) -> None:
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, tiny_model, meta={"checkpoint_id": "t1", "step": 3})
    loaded, meta = load_checkpoint(path, expected_config=TINY)
    assert meta == {"checkpoint_id": "t1", "step": 3}
    assert loaded.config == TINY
    torch.testing.assert_close(outputs(loaded), outputs(tiny_model))
    assert not list(path.parent.glob(".*.tmp"))


def test_half_precision_storage_is_smaller_and_close(tiny_model: SAVOS, tmp_path) -> None:
    save_checkpoint(tmp_path / "full.pt", tiny_model)
    save_checkpoint(tmp_path / "half.pt", tiny_model, half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    loaded, _ = load_checkpoint(tmp_path / "half.pt")
    assert next(loaded.parameters()).dtype == torch.float32
    torch.testing.assert_close(outputs(loaded), outputs(tiny_model), atol=0.05, rtol=0.05)


def test_config_mismatch_is_named(tiny_model: SAVOS, tmp_path) -> None:
    save_checkpoint(tmp_path / "m.pt", tiny_model)
    other = ModelConfig(backbone="efficientnet_lite0", decoder_channels=32, attention_reduction=4)
    with pytest.raises(CheckpointError, match="decoder_channels: expected 32, checkpoint has 16"):
        load_checkpoint(tmp_path / "m.pt", expected_config=other)


def test_missing_and_unexpected_keys_are_listed(tiny_model: SAVOS, tmp_path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["extra.weight"] = torch.zeros(1)
    del payload["state_dict"]["head.bias"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing keys head\.bias; unexpected keys extra\.weight"):
        load_checkpoint(path)


class Payload:
    """Stands for a malicious object: unpickling it would call os.system."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_pickle_payload_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "savos-checkpoint", "format_version": 1, "hook": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load"):
        load_checkpoint(path)


def test_files_that_are_not_checkpoints(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a SAVOS checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_export_halves_and_renames(tmp_path: Path) -> None:
    from savos.cli import main

    torch.manual_seed(0)
    model = build_savos(TINY, backbone_weights="none")
    save_checkpoint(tmp_path / "run.pt", model, meta={"checkpoint_id": "run-step4", "step": 4})
    assert main(["export-model", str(tmp_path / "run.pt"), "--out", str(tmp_path / "ship.pt"), "--id", "ship-v1"]) == 0
    shipped, meta = load_checkpoint(tmp_path / "ship.pt")
    assert meta["checkpoint_id"] == "ship-v1"
    assert meta["step"] == 4
    assert (tmp_path / "ship.pt").stat().st_size < 0.6 * (tmp_path / "run.pt").stat().st_size
    for a, b in zip(model.state_dict().values(), shipped.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3)


def test_export_of_several_checkpoints_is_their_weighted_average(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from savos.cli import main

    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(build_savos(TINY, backbone_weights="none"))
        save_checkpoint(tmp_path / f"m{seed}.pt", models[-1], meta={"checkpoint_id": f"m{seed}"})
    args = ["export-model", str(tmp_path / "m0.pt"), str(tmp_path / "m1.pt"), "--out", str(tmp_path / "soup.pt")]
    assert main([*args, "--id", "soup", "--weights", "0.25", "0.75", "--fp32"]) == 0
    soup, meta = load_checkpoint(tmp_path / "soup.pt")
    assert meta["checkpoint_id"] == "soup"
    assert meta["average_weights"] == [0.25, 0.75]
    a, b = models[0].state_dict(), models[1].state_dict()
    for key, tensor in soup.state_dict().items():
        expected = 0.25 * a[key] + 0.75 * b[key] if tensor.is_floating_point() else b[key]
        torch.testing.assert_close(tensor, expected)
    assert not torch.equal(a["head.weight"], b["head.weight"])  # the average is not one of them

    other = build_savos(
        ModelConfig(backbone=TINY.backbone, decoder_channels=8, attention_reduction=4), backbone_weights="none"
    )
    save_checkpoint(tmp_path / "other.pt", other)
    mixed = ["export-model", str(tmp_path / "m0.pt"), str(tmp_path / "other.pt"), "--out", "x.pt", "--id", "x"]
    assert main(mixed) == 2
    assert "other.pt: model config mismatch" in capsys.readouterr().err
    with pytest.raises(ValueError, match="summing to 1"):
        main([*args, "--id", "bad", "--weights", "0.5", "0.6"])


def test_stage_two_is_rebuilt_from_an_equal_average_and_stage_one(tmp_path: Path) -> None:
    """benchmarks/rebuild_stage2.py, which the model card's v3 commands run: the second half of an equal soup back
    from the soup and its first half, so the two can be weighed again."""
    import subprocess
    import sys

    from savos.cli import main

    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(build_savos(TINY, backbone_weights="none"))
        for module in models[-1].modules():  # BatchNorm statistics that differ between the two
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 2.0)
        save_checkpoint(tmp_path / f"m{seed}.pt", models[-1], meta={"checkpoint_id": f"m{seed}"})
    pair = [str(tmp_path / "m0.pt"), str(tmp_path / "m1.pt")]
    assert main(["export-model", *pair, "--out", str(tmp_path / "soup.pt"), "--id", "soup", "--fp32"]) == 0
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "rebuild_stage2.py"
    rebuild = [sys.executable, str(script), "--v1", pair[0], "--out", str(tmp_path / "rebuilt.pt")]
    subprocess.run([*rebuild, "--average", str(tmp_path / "soup.pt")], check=True, capture_output=True)
    rebuilt, _ = load_checkpoint(tmp_path / "rebuilt.pt")
    second = models[1].state_dict()
    for key, tensor in rebuilt.state_dict().items():
        torch.testing.assert_close(tensor, second[key], rtol=1e-5, atol=1e-5)

    uneven = ["export-model", *pair, "--out", str(tmp_path / "uneven.pt"), "--id", "u", "--weights", "0.3", "0.7"]
    assert main(uneven) == 0
    refused = subprocess.run([*rebuild, "--average", str(tmp_path / "uneven.pt")], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "not an equal average" in refused.stderr
