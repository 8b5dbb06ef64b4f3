"""The training loop end to end on a tiny synthetic DAVIS root: files, resume, validation, the CLI."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from savos.checkpoint import load_checkpoint
from savos.cli import main
from savos.data.synthetic import make_video
from savos.train import RunOptions, TrainConfig, train
from savos.train.loop import learning_rate
from tests.conftest import TINY, write_dataset

CONFIG = TrainConfig(
    model=TINY, dev_sequences=("dev0",), steps=4, batch_size=2, crop=(48, 64), clip_length=2, warmup_steps=1
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    videos = {name: make_video(6, 64, 96, num_objects=1, seed=i) for i, name in enumerate(["a", "b", "c", "dev0"])}
    return write_dataset(tmp_path_factory.mktemp("davis"), videos)


def _options(root: Path, out: Path, **kwargs: object) -> RunOptions:
    defaults: dict[str, object] = {"workers": 0, "backbone_weights": "none", "log_every": 1, "validate_at_end": False}
    return RunOptions(data_root=root, out_dir=out, **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_run_writes_checkpoint_metrics_and_dev_scores(root: Path, tmp_path: Path) -> None:
    path = train(CONFIG, _options(root, tmp_path / "run", validate_at_end=True, checkpoint_every=2))
    _model, meta = load_checkpoint(path, expected_config=TINY)
    assert meta["step"] == 4
    assert meta["train_config"]["steps"] == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records[:4]] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 for r in records[:4])
    dev = records[-1]["dev"]
    assert 0.0 <= dev["J&F-Mean"] <= 1.0
    assert sorted(p.name for p in (tmp_path / "run" / "dev-predictions" / "dev0").iterdir())[0] == "00000.png"


def test_resume_continues_exactly(root: Path, tmp_path: Path) -> None:
    torch.use_deterministic_algorithms(True)
    try:
        straight, _ = load_checkpoint(train(CONFIG, _options(root, tmp_path / "straight")))
        train(CONFIG, _options(root, tmp_path / "resumed", stop_after=2))
        assert load_checkpoint(tmp_path / "resumed" / "model.pt")[1]["step"] == 2
        resumed, _ = load_checkpoint(train(CONFIG, _options(root, tmp_path / "resumed")))
    finally:
        torch.use_deterministic_algorithms(False)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_resume_refuses_another_config(root: Path, tmp_path: Path) -> None:
    train(CONFIG, _options(root, tmp_path / "run", stop_after=1))
    with pytest.raises(ValueError, match="different training config"):
        train(replace(CONFIG, lr=1.0), _options(root, tmp_path / "run"))


def test_learning_rate_warms_up_then_decays() -> None:
    config = replace(CONFIG, steps=100, warmup_steps=10, lr=1.0)
    rates = [learning_rate(config, step) for step in range(100)]
    assert rates[0] == pytest.approx(0.1)
    assert rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))
    assert rates[-1] < 0.02


def test_config_round_trips() -> None:
    assert TrainConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="lbfgs")


def test_cli_trains_with_sgd(root: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(root), "--out", str(tmp_path / "cli"), "--dev", "dev0", "--steps", "2"]
    args += ["--batch-size", "1", "--crop", "48", "64", "--clip-length", "1", "--optimizer", "sgd"]
    args += ["--decoder-channels", "16", "--workers", "0", "--no-validate", "--backbone-weights", "none"]
    assert main(args) == 0
    _, meta = load_checkpoint(tmp_path / "cli" / "model.pt")
    assert meta["train_config"]["optimizer"] == "sgd"
    assert meta["train_config"]["momentum"] == 0.5


def test_init_from_a_checkpoint(root: Path, tmp_path: Path) -> None:
    first = train(CONFIG, _options(root, tmp_path / "stage1"))
    stage1, _ = load_checkpoint(first)
    # Zero steps of learning (lr 0) from stage 1's weights must leave them unchanged.
    frozen = replace(CONFIG, lr=0.0, weight_decay=0.0, steps=1)
    second = train(frozen, _options(root, tmp_path / "stage2", init_checkpoint=first))
    stage2, meta = load_checkpoint(second)
    assert meta["init_checkpoint"] == str(first)
    for a, b in zip(stage1.state_dict().values(), stage2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
