"""The shared bad-input mechanism: one line on stderr and an exit code, tracebacks only on request."""

from __future__ import annotations

import pytest

from wmtp_lightning.errors import ArgumentParser, BadInput, MissingInput, script_main, writable_dir


def make_main(exc: BaseException | None = None, result: object = "done"):
    @script_main
    def main(argv: list[str] | None = None):
        args = ArgumentParser(prog="tool").parse_args(argv)
        assert args.debug in (True, False)  # --debug is every script's flag
        if exc is not None:
            raise exc
        return result

    return main


def exit_code_and_stderr(main, argv, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (BadInput("a.jsonl:3: difficulty: expected int, got str"), 1, "a.jsonl:3: difficulty: expected int, got str"),
        (MissingInput("raw: raw folder not found"), 1, "raw: raw folder not found"),
        (FileNotFoundError(2, "No such file or directory", "/x/y"), 1, "/x/y: No such file or directory"),
        (OSError(28, "No space left on device"), 1, "[Errno 28] No space left on device"),
        (BadInput("first line\n  second line"), 1, "first line second line"),  # folded to one line
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_user_errors_are_one_line(capsys, exc, code, line):
    assert exit_code_and_stderr(make_main(exc), [], capsys) == (code, [f"error: {line}"])


def test_usage_error_message(capsys):
    assert exit_code_and_stderr(make_main(), ["--nope"], capsys) == (
        2,
        ["error: tool: unrecognized arguments: --nope (see --help)"],
    )


def test_success_returns_main_value_and_bugs_keep_their_traceback():
    assert make_main(result=7)([]) == 7
    with pytest.raises(ZeroDivisionError):  # not bad input: a bug, shown as one
        make_main(ZeroDivisionError("x"))([])


def test_debug_flag_and_environment_reraise(monkeypatch):
    with pytest.raises(BadInput, match="bad"):
        make_main(BadInput("bad"))(["--debug"])
    monkeypatch.setenv("WMTP_DEBUG", "1")
    with pytest.raises(BadInput, match="bad"):
        make_main(BadInput("bad"))([])
    monkeypatch.setenv("WMTP_DEBUG", "0")
    with pytest.raises(SystemExit):
        make_main(BadInput("bad"))([])


def test_user_errors_are_also_the_builtin_kinds():
    assert isinstance(BadInput("x"), ValueError) and isinstance(MissingInput("x"), FileNotFoundError)


def test_writable_dir(tmp_path):
    assert writable_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(BadInput, match=f"{blocker}: exists and is not a directory"):
        writable_dir(blocker)
    with pytest.raises(BadInput, match=r"f/sub: not a writable directory \(Not a directory\)"):
        writable_dir(blocker / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "f"]  # the probe file is gone
    assert list((tmp_path / "a" / "b").iterdir()) == []
