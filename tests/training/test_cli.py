"""``ferdata train`` / ``ferdata eval`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ferdata.cli.app import app

runner = CliRunner()


def test_train_list_shows_every_model() -> None:
    from ferdata.models import list_models

    result = runner.invoke(app, ["train", "--list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output
    assert "224×224×3" in result.output and "32×32×3" in result.output


def test_train_eval_and_ensemble_from_the_command_line(tiny_manifest, tmp_path: Path) -> None:
    m = tiny_manifest()
    runs = tmp_path / "runs"
    args = ["train", "small-cnn", "--manifest", str(m.dir), "--split", "cv", "--epochs", "2", "--batch-size", "4",
            "--lr", "0.001", "--runs", str(runs), "--augment", "flip,crop", "--class-weights", "balanced"]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "test accuracy" in first.output
    second = runner.invoke(app, [*args, "--seed", "1", "--fold", "all"], env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    assert "mean ± std" in second.output
    made = sorted(runs.iterdir())
    ev = runner.invoke(app, ["eval", str(made[0])], env={"COLUMNS": "200"})
    assert ev.exit_code == 0, ev.output
    assert "top-2 accuracy" in ev.output and "confusion" in ev.output
    ens = runner.invoke(app, ["train", "ensemble", "--runs", str(made[0]), str(made[1] / "fold-0"),
                              "--runs-dir", str(runs)], env={"COLUMNS": "200"})
    assert ens.exit_code == 0, ens.output
    assert "member" in ens.output


def test_user_errors_exit_2_with_one_line(tiny_manifest, tmp_path: Path) -> None:
    m = tiny_manifest()
    for args in (["train", "no-such-model", "--manifest", str(m.dir), "--split", "cv"],
                 ["train", "small-cnn", "--manifest", str(m.dir), "--split", "missing"],
                 ["train", "small-cnn", "--manifest", str(m.dir), "--split", "cv", "--fold", "x"],
                 ["train", "small-cnn"],
                 ["eval", str(tmp_path / "nothing")]):
        result = runner.invoke(app, [*args, "--runs", str(tmp_path / "r")] if args[0] == "train" else args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert len([line for line in result.output.strip().splitlines() if line.strip()]) <= 2, result.output
