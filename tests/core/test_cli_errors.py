"""The CLI's one user-error base: any InputError (and an OSError about a file) prints one line and exits 2;
anything else is a bug and keeps its traceback."""

import pytest

import core.cli.measure as measure
from core.cli import main as cli_main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_broken_plan_file_is_one_line_naming_it(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text('{\n  "ratio": 0.3,,\n}')
    assert cli_main(["prune", "--plan", str(plan), "--out", str(tmp_path / "out.pt")]) == 2
    assert _error_line(capsys) == f"error: {plan}: not a readable JSON file (invalid at line 2, column 16)"


@pytest.mark.parametrize("command", ["prune", "prune-stages"])
def test_plan_folder_is_named_as_such(tmp_path, capsys, command):
    folder = tmp_path / "plan.json"
    folder.mkdir()
    extra = ["--dataset", str(tmp_path)] if command == "prune-stages" else []
    assert cli_main([command, "--plan", str(folder), "--out", str(tmp_path / "out.pt"), *extra]) == 2
    assert _error_line(capsys) == f"error: {folder}: is a directory, expected a plan file"


def test_unknown_criterion_and_missing_dataset_are_user_errors(tmp_path, capsys):
    assert cli_main(["importance", "--dataset", str(tmp_path), "--out", str(tmp_path / "r"), "--criterion", "nope"]) == 2
    assert _error_line(capsys).startswith("error: --criterion: unknown criteria nope; expected some of combined")
    assert cli_main(["eval", "--dataset", str(tmp_path / "nowhere"), "--model", str(tmp_path / "m.pt")]) == 2
    assert _error_line(capsys) == f"error: {tmp_path / 'm.pt'}: file not found"


def test_os_error_about_a_file_is_one_line_without_errno(tmp_path, capsys, monkeypatch):
    def refuse(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.pt"))

    monkeypatch.setattr(measure, "cmd_info", refuse)
    assert cli_main(["info"]) == 2
    assert _error_line(capsys) == f"error: {tmp_path / 'out.pt'}: Permission denied"


def test_a_bug_is_not_hidden_as_a_user_error(monkeypatch):
    def bug(args):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(measure, "cmd_info", bug)
    with pytest.raises(ValueError, match="broadcast"):
        cli_main(["info"])
