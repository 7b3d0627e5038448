"""Benchmarks write their own marked section of a results file and leave the rest alone."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import importance  # noqa: E402
from bench.sections import write_section  # noqa: E402


def test_write_section_replaces_only_its_own(tmp_path):
    out = tmp_path / "RESULTS.md"
    write_section(out, "a", "<!-- a:start -->\nfirst a\n<!-- a:end -->\n")
    write_section(out, "b", "<!-- b:start -->\nb\n<!-- b:end -->\n")
    write_section(out, "a", "<!-- a:start -->\nsecond a\n<!-- a:end -->\n")
    text = out.read_text()
    assert "second a" in text and "first a" not in text and "\nb\n" in text
    assert text.index("<!-- a:start -->") < text.index("<!-- b:start -->")


def test_importance_bench_writes_its_section_with_the_command(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# results\n\nkept text\n\n<!-- smoke:start -->\nold\n<!-- smoke:end -->\n\n<!-- other:start -->\nx\n<!-- other:end -->\n")
    argv = ["--model", "random:resnet18", "--dataset", str(REPO / "tests" / "data" / "tiny_os2d"), "--images", "1",
            "--target-size", "128", "--criteria", "weight_l1,combined", "--out-md", str(out), "--section", "smoke"]
    assert importance.main(argv) == 0
    text = out.read_text()
    assert "kept text" in text and "<!-- other:start -->\nx\n<!-- other:end -->" in text and "\nold\n" not in text
    section = text[text.index("<!-- smoke:start -->"):text.index("<!-- smoke:end -->")]
    assert "Spearman" in section or "LCP" in section
    assert "Command: `.venv/bin/python -m bench.importance --model random:resnet18" in section


def test_importance_bench_needs_a_destination():
    with pytest.raises(SystemExit):
        importance.main(["--model", "random:resnet18", "--dataset", "x"])


def test_recorded_command_reruns_as_given():
    """An empty or spaced argument survives the round trip through the shell."""
    import shlex

    from bench.sections import command_line

    argv = ["--plot", "", "--work", "data/my run"]
    line = command_line("seed_table.py", argv)
    assert shlex.split(line)[3:] == argv
    assert command_line("video.py", []) == command_line("video", []) == ".venv/bin/python -m bench.video"


def test_seed_table_cache_refuses_results_of_another_model_or_budget(tmp_path):
    from bench.seed_table import Cache

    cache = Cache(tmp_path)
    cache.bind("model_sha256", "a" * 64, "model")
    cache.bind("finetune", {"iterations": 100, "lr": 5e-5}, "fine-tune budget")
    cache.put("map/r00-original", 0.4)
    Cache(tmp_path).bind("model_sha256", "a" * 64, "model")  # the same model reuses its steps
    Cache(tmp_path).bind("finetune", {"iterations": 100, "lr": 5e-5}, "fine-tune budget")
    with pytest.raises(SystemExit, match="another model"):
        Cache(tmp_path).bind("model_sha256", "b" * 64, "model")
    with pytest.raises(SystemExit, match="another fine-tune budget.*500"):
        Cache(tmp_path).bind("finetune", {"iterations": 500, "lr": 5e-5}, "fine-tune budget")
