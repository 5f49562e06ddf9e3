"""features.files: an output's directories are made only when it is written, and a set of files appears whole."""

from __future__ import annotations

import pytest

from features.files import atomic_files, atomic_path, check_output


def test_checking_an_output_makes_nothing_and_names_the_directory_writing_will_make(tmp_path):
    out = tmp_path / "new" / "deeper" / "scores.parquet"
    assert check_output(out) == tmp_path / "new"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match="taken is a file. Fix: choose a place you can write to"):
        check_output(tmp_path / "taken" / "scores.parquet")


def test_a_failed_write_removes_the_directories_it_made_and_keeps_those_that_were_there(tmp_path):
    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "new" / "deeper" / "scores.csv", tmp_path / "kept" / "scores.csv"):
        with pytest.raises(RuntimeError), atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the query failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []


def test_a_set_of_files_appears_whole_or_not_at_all(tmp_path):
    lists = tmp_path / "camp" / "lists"
    with pytest.raises(RuntimeError), atomic_files(lists) as tmp:
        (tmp / "welcome.csv").write_text("a")
        raise RuntimeError("stopped after one list")
    assert list(tmp_path.iterdir()) == []
    with atomic_files(lists) as tmp:
        (tmp / "welcome.csv").write_text("a")
        assert not lists.exists()  # nothing shows until every file is written
        (tmp / "upsell.csv").write_text("b")
    assert sorted(p.name for p in lists.iterdir()) == ["upsell.csv", "welcome.csv"]
    (lists / "mine.txt").write_text("kept")
    with atomic_files(lists) as tmp:
        (tmp / "welcome.csv").write_text("new")
        assert (lists / "welcome.csv").read_text() == "a"
    assert sorted(p.name for p in lists.iterdir()) == ["mine.txt", "upsell.csv", "welcome.csv"]
    assert (lists / "welcome.csv").read_text() == "new"
