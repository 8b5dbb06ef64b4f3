"""The job's options, from flags and YAML: one validated object; a mistake exits 2 naming the option, before
anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from savos_job.config import JobConfig, parse_config

BASE = ["--input", "corpus/", "--output", "labels/"]


@pytest.mark.parametrize(
    ("flags", "option"),
    [
        (["--max-pixels", "0"], "--max-pixels"),
        (["--storage-retries", "0"], "--storage-retries"),
        (["--num-actors", "0"], "--num-actors"),
        (["--max-videos", "-1"], "--max-videos"),
        (["--scales", "0"], "--scales"),
        (["--scales", "1", "-0.5"], "--scales"),
        (["--max-pass-pixels", "0"], "--max-pass-pixels"),
        (["--cpus-per-actor", "0"], "--cpus-per-actor"),
        (["--gpus-per-actor", "-1"], "--gpus-per-actor"),
        (["--max-objects", "0"], "--max-objects"),
        (["--online-steps", "-3"], "--online-steps"),
        (["--online-lr", "1e-4"], "--online-lr"),  # without online adaptation
        (["--search-radius", "-0.2"], "--search-radius"),
        (["--short-side", "-1"], "--short-side"),
        (["--short-side", "16"], "--short-side"),  # below the encoder's stride
    ],
)
def test_bad_flags_exit_2_naming_the_option(flags: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_config([*BASE, *flags])
    assert caught.value.code == 2
    assert f"error: {option}" in capsys.readouterr().err


def _yaml(tmp_path: Path, text: str) -> list[str]:
    (path := tmp_path / "job.yaml").write_text("input: corpus/\noutput: labels/\n" + text)
    return ["--config", str(path)]


def test_yaml_values_mean_what_a_person_wrote(tmp_path: Path) -> None:
    config = parse_config(_yaml(tmp_path, 'retry_failed: "false"\nnum_actors: "2"\nscales: 0.5\nflip: "yes"\n'))
    assert config.retry_failed is False
    assert config.num_actors == 2
    assert config.scales == (0.5,)
    assert config.flip is True


def test_a_search_radius_reaches_the_predictor_and_0_turns_it_off() -> None:
    assert parse_config([*BASE, "--search-radius", "0.2"]).test_time().search_radius == 0.2
    assert parse_config([*BASE, "--quality", "best", "--search-radius", "0"]).test_time().search_radius is None


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("retry_failed: maybe\n", "retry_failed"),
        ("num_actors: two\n", "num_actors"),
        ("scales: [0.5, big]\n", "scales"),
        ("max_pixels: 0\n", "max_pixels"),
        ("quality: superb\n", "quality"),
        ("layout: zip\n", "layout"),
        ("precision: fp8\n", "precision"),
    ],
)
def test_bad_yaml_exits_2_naming_the_key_and_the_file(
    tmp_path: Path, text: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_config(_yaml(tmp_path, text))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"--{option.replace('_', '-')} (or {option} in {tmp_path / 'job.yaml'})" in err


@pytest.mark.parametrize("text", ["- a list\n", "input: [unclosed\n"])
def test_a_yaml_file_that_is_no_mapping_exits_2(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    (path := tmp_path / "job.yaml").write_text(text)
    with pytest.raises(SystemExit) as caught:
        parse_config(["--config", str(path)])
    assert caught.value.code == 2
    assert str(path) in capsys.readouterr().err


def test_flags_win_over_yaml_and_are_validated_alike(tmp_path: Path) -> None:
    config = parse_config([*_yaml(tmp_path, "num_actors: 3\n"), "--num-actors", "4"])
    assert config.num_actors == 4
    with pytest.raises(ValueError, match="num_actors"):
        JobConfig(input="a", output="b", num_actors=0)
