"""Output that survives a pipe or a log: consoles as wide as the values, tables that fold
instead of cutting, plain periodic progress lines, one JSON object with --json."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from ferdata.cli import common
from ferdata.cli.common import LOG_WIDTH, RichProgress, Summary, _Console, table
from ferdata.findings import Tally

LONG = "/a/very/long/path/" + "x" * 150 + "/images.parquet"


def render(console: Console, *items: object) -> str:
    with console.capture() as cap:
        for item in items:
            console.print(item)
    return cap.get()


def test_a_console_under_a_pipe_is_as_wide_as_its_values(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    console = _Console(file=io.StringIO())
    assert not console.is_terminal and console.width == LOG_WIDTH
    out = render(console, table("t", ("key", "value"), [("manifest", LONG), ("images", 12345)]))
    assert LONG in out and "12,345" in out and "…" not in out
    assert len(out.splitlines()[2]) < 250  # wide, not padded to the console width


def test_an_explicit_narrow_columns_wraps_values_instead_of_cutting_them(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    console = _Console(file=io.StringIO())
    assert console.width == 60
    out = render(console, table("t", ("key", "value"), [("manifest", LONG)]))
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 60
    assert "x" * 150 in "".join(line.strip("│ ") for line in out.splitlines())


def test_cells_are_plain_text_not_markup_or_emoji():
    console = _Console(file=io.StringIO())
    out = render(console, table("t", ("a", "b"), [("[bold]x[/bold]", ":train:")]))
    assert "[bold]x[/bold]" in out and ":train:" in out


def progress_on(buffer: io.StringIO) -> RichProgress:
    return RichProgress(Console(file=buffer, force_terminal=False, width=80))


def test_progress_in_a_log_prints_periodic_plain_lines(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("FERDATA_PROGRESS_SECONDS", "10")
    buffer = io.StringIO()
    p = progress_on(buffer)
    p.start("reading images", 20)
    for _ in range(20):
        now[0] += 3.0  # three seconds per image
        p.advance()
    p.finish()
    lines = buffer.getvalue().splitlines()
    # a line at most every 10 s (every fourth advance at 3 s each), then the closing line
    assert len(lines) == 5, lines
    assert lines[0].startswith("reading images: 4/20 (20%), ") and "ETA" in lines[0] and "elapsed" in lines[0]
    assert lines[-1].startswith("reading images: 20/20 done in ")
    assert all("\x1b" not in line for line in lines)  # no colour codes, no bar


def test_a_short_step_in_a_log_stays_quiet_and_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.setenv("FERDATA_PROGRESS_SECONDS", "10")
    buffer = io.StringIO()
    p = progress_on(buffer)
    p.start("hashing", 3)
    p.advance(3)
    p.finish()
    assert buffer.getvalue() == ""
    p = RichProgress(Console(file=io.StringIO(), force_terminal=True))
    assert not p.plain


def test_unknown_totals_report_a_count_and_a_rate(monkeypatch):
    monkeypatch.setenv("FERDATA_PROGRESS_SECONDS", "0")
    buffer = io.StringIO()
    p = progress_on(buffer)
    p.start("scanning", 0)
    p.advance(5)
    p.finish()
    first = buffer.getvalue().splitlines()[0]
    assert first.startswith("scanning: 5 done, ") and "ETA" not in first


def test_epoch_lines_carry_losses_throughput_and_eta():
    from ferdata.cli.train import EpochDisplay

    line = EpochDisplay.epoch_line({"fold": 0, "epoch": 3, "epochs": 30, "train_loss": 1.2345, "train_accuracy": 0.5,
                                    "val_accuracy": 0.25, "images_per_s": 120.4}, 30.0)
    assert line == ("fold 0 epoch 3/30: train loss 1.234, train acc 0.5, val acc 0.25, 120 images/s, "
                    "0:30 elapsed, ETA 4:30")


def test_summary_json_has_every_row_its_first_paths_and_tables(capsys):
    counts = Tally()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        counts.add("irregular file name", name)
    s = Summary("ingest x")
    s.row("manifest", LONG).row("label anger", 30).row("label anger", 31)
    s.counted("warning", counts, counts.first_paths())
    s.table("faces", ("source", "confidence"), [("happy/ok0.png", 0.5)])
    s.warn("something to fix")
    s.print(as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data["title"] == "ingest x" and data["manifest"] == LONG
    assert data["label_anger"] == 30 and data["label_anger_2"] == 31
    assert data["warning_irregular_file_name"] == 4
    assert data["warning_irregular_file_name_first"] == ["a.png", "b.png", "c.png", "d.png"]
    assert data["tables"]["faces"] == [{"source": "happy/ok0.png", "confidence": 0.5}]
    assert data["warnings"] == ["something to fix"]


def test_a_counted_warning_comes_with_its_first_names(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    counts = Tally()
    for k in range(7):
        counts.add("irregular file name", f"Images/Sad/clip{k}.png")
    s = Summary("ingest sfew")
    s.counted("warning", counts, counts.first_paths())
    buffer = io.StringIO()
    monkeypatch.setattr(common, "console", _Console(file=buffer))
    s.print()
    out = buffer.getvalue()
    assert "warning: irregular file name" in out
    assert "e.g. Images/Sad/clip0.png, Images/Sad/clip1.png, Images/Sad/clip2.png (+4 more)" in out


def test_tally_keeps_the_first_paths_and_pickles():
    import pickle

    t = Tally()
    for k in range(9):
        t.add("hidden", f"f{k}")
    t["plain"] += 2  # still a Counter
    back = pickle.loads(pickle.dumps(t))
    assert back == t and back.first_paths() == {"hidden": ["f0", "f1", "f2", "f3", "f4"]}


@pytest.mark.parametrize("text", ["a" * 61])
def test_short_help_over_sixty_characters_is_refused(text):
    with pytest.raises(ValueError, match="60"):
        common.command_help(text, ())


def test_many_short_tasks_still_print_every_interval(monkeypatch):
    """30 epochs of 3 s each: no epoch reaches 10 s, the log still gets a line every 10 s."""
    now = [0.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("FERDATA_PROGRESS_SECONDS", "10")
    buffer = io.StringIO()
    p = progress_on(buffer)
    for epoch in range(30):
        p.start(f"fold 0 epoch {epoch + 1}/30", 3)
        for _ in range(3):
            now[0] += 1.0
            p.advance()
        p.finish()
    lines = [line for line in buffer.getvalue().splitlines() if "done in" not in line]
    assert 7 <= len(lines) <= 9 and lines[0].startswith("fold 0 epoch 4/30: ")


def test_a_training_run_without_validation_says_why_it_has_no_best_epoch(tmp_path):
    from ferdata.cli.train import NO_BEST_EPOCH, train_summary
    from ferdata.training.api import RunResult

    metrics = {"test": {"n": 4, "accuracy": 0.5, "top2_accuracy": 0.75, "macro": {"f1": 0.4},
                        "weighted": {"f1": 0.45}, "majority_baseline": 0.25},
               "epochs_run": 3, "best_epoch": None, "stopped_early": False, "train_seconds": 1.5}
    s = train_summary(RunResult(tmp_path, metrics))
    assert ("best epoch", NO_BEST_EPOCH) in s.rows  # a word, not an empty cell
    assert s.data["best_epoch"] is None  # JSON keeps the value
    with_val = train_summary(RunResult(tmp_path, {**metrics, "best_epoch": 2}))
    assert ("best epoch", 2) in with_val.rows and with_val.data["best_epoch"] == 2
