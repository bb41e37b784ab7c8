"""Progress lines on a pipe and on a terminal, and the number and duration formats."""

import io

from nasengine.progress import Progress, duration, human, progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_pipe_a_line_per_tenth_then_the_final_line():
    out = io.StringIO()
    with Progress(20, "work", stream=out) as p:
        for _ in range(20):
            p.update()
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 11 and lines[-1].startswith("work: 20/20 | ")
    counts = [int(line.split()[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts)
    assert "eta" in lines[0] and "eta" not in lines[-1]


def test_on_a_terminal_the_line_is_rewritten_and_messages_get_their_own_line():
    out = Terminal()
    with Progress(3, "search", stream=out, unit="trained") as p:
        p.set(1, status="1 running | best 0.5000 (#0)")
        p.message("new best: trial #1 0.7000")
        p.update(2, status="0 running | best 0.7000 (#1)")
    text = out.getvalue()
    assert text.endswith("\n") and "\r" in text
    assert "\rnew best: trial #1 0.7000\n" in text
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("search: 3/3 trained | 0 running | best 0.7000 (#1) | ")
    assert p.line().startswith("search: 3/3 trained | 0 running")


def test_a_fast_loop_on_a_terminal_writes_little():
    out = Terminal()
    with Progress(100_000, "queries", stream=out) as p:
        for _ in range(100_000):
            p.update()
    assert out.getvalue().count("\r") < 100 and out.getvalue().endswith("\n")


def test_open_ended_scaled_and_disabled():
    out = io.StringIO()
    p = Progress(170_498_071, "cifar10", stream=out, scale=True, unit="bytes")
    p.set(52_428_800, force=True)
    assert out.getvalue().startswith("cifar10: 52.4M/170M bytes | ")
    open_ended = Progress(None, "rows", stream=io.StringIO())
    open_ended.update(7)
    assert open_ended.line().startswith("rows: 7 | ") and "eta" not in open_ended.line()
    quiet = io.StringIO()
    with Progress(3, "x", stream=quiet, enabled=False) as p:
        p.update(3)
        p.message("hidden")
    assert quiet.getvalue() == "" and p.done == 3


def test_progress_over_an_iterable():
    out = io.StringIO()
    assert list(progress(["a", "b", "c"], "files", stream=out)) == ["a", "b", "c"]
    assert out.getvalue().splitlines()[-1].startswith("files: 3/3 | ")


def test_formats():
    assert [human(n) for n in (999, 1234, 25_270, 1_234_567, 912_000_000, None, float("nan"), True)] == [
        "999", "1.23K", "25.3K", "1.23M", "912M", "-", "-", "-"]
    assert [duration(s) for s in (4.25, 65, 7380, None)] == ["4.2s", "1m05s", "2h03m", "-"]
