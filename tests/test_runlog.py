"""A run's logs as people read them: curves.png (matplotlib) and the VisualDL log, read back with
VisualDL's own reader (tags, steps, values, images; resumes without duplicate steps)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from visualdl import LogReader

import sr_train.runlog
from sr_train.plots import run_figure
from sr_train.run_files import read_metrics
from sr_train.run_files import VISUALDL_DIR
from sr_train.visualdl_log import VisualDLLog, record_files, tag_of
from srdata.errors import UserError
from helpers import run, tiny_recipe


def _reader(run_dir: Path) -> LogReader:
    files = record_files(run_dir / VISUALDL_DIR)
    assert len(files) == 1, files  # VisualDL shows one record file per folder
    return LogReader(file_path=str(files[0]))


def _scalars(reader: LogReader, tag: str) -> list[tuple[int, float]]:
    return [(value.id, value.value) for value in reader.get_data("scalar", tag)]


def _assert_matches_metrics(reader: LogReader, rows: list[dict]) -> None:
    """Every finite number of metrics.jsonl is in the log at its iteration, once, and nothing else."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "iter" and value is not None:
                expected.setdefault(tag_of(key), []).append((row["iter"], value))
    assert set(reader.get_tags()["scalar"]) == set(expected)
    for tag, points in expected.items():
        got = _scalars(reader, tag)
        assert [step for step, _ in got] == [step for step, _ in points], tag
        np.testing.assert_allclose([v for _, v in got], [v for _, v in points], rtol=1e-6, err_msg=tag)


def test_visualdl_log_holds_every_scalar_and_the_val_pictures(pairs_dir, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_recipe(pairs_dir, run_dir, log__visualdl=True))
    reader = _reader(run_dir)
    rows = read_metrics(run_dir)
    _assert_matches_metrics(reader, rows)
    tags = reader.get_tags()["scalar"]
    assert {"train/loss", "train/l_pix", "train/lr", "speed/it_per_s", "val/psnr", "val/ssim"} <= set(tags)
    assert [step for step, _ in _scalars(reader, "train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in _scalars(reader, "val/psnr")] == [3, 6]
    assert sorted(reader.get_tags()["image"]) == ["val/im4", "val/im5"]  # the val pairs, LR | SR | HR
    for record in reader.get_data("image", "val/im4"):
        picture = cv2.imdecode(np.frombuffer(record.image.encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
        assert record.id in (3, 6) and picture.shape == (64, 3 * 64, 3)
        hr = cv2.imread(str(pairs_dir / "val" / "im4.png"))
        np.testing.assert_array_equal(picture[:, 128:], hr)  # the right third is the HR image itself


def test_resumed_run_continues_the_same_log_without_duplicate_steps(pairs_dir, tmp_path):
    """Kill after iteration 6 was logged but before its state was written: the resumed run redoes 4-6
    (here with another learning rate, so the redone values differ) and the log holds only the new ones."""
    run_dir = tmp_path / "run"
    run(tiny_recipe(pairs_dir, run_dir, log__visualdl=True))
    (run_dir / "ckpt" / "iter_6.state").unlink()
    old = {step: value for step, value in _scalars(_reader(run_dir), "train/lr")}
    run(tiny_recipe(pairs_dir, run_dir, log__visualdl=True, train__lr=3e-3), resume="auto")
    reader = _reader(run_dir)
    _assert_matches_metrics(reader, read_metrics(run_dir))
    new = dict(_scalars(reader, "train/lr"))
    assert sorted(new) == [1, 2, 3, 4, 5, 6]
    assert all(new[s] == old[s] for s in (1, 2, 3)) and all(new[s] != old[s] for s in (4, 5, 6))
    assert [r.id for r in reader.get_data("image", "val/im4")] == [3, 6]


def test_a_kill_during_the_copy_leaves_a_log_the_next_resume_repairs(tmp_path):
    """Two record files (the copy of a killed resume, torn mid-record, sorting last) are merged: each
    tag and step once, steps after the resumed iteration dropped."""
    log = VisualDLLog(tmp_path, resumed_at=0)
    for step in range(1, 6):
        log.scalars({"iter": step, "loss": 1.0 / step, "lr": 0.1})
    log.close()
    first = record_files(tmp_path / VISUALDL_DIR)[0]
    torn = first.with_name("vdlrecords.srkit-000002.log")
    torn.write_bytes(first.read_bytes()[:-7])
    log = VisualDLLog(tmp_path, resumed_at=3)
    log.scalars({"iter": 4, "loss": 9.0})
    log.close()
    assert [p.name for p in record_files(tmp_path / VISUALDL_DIR)] == ["vdlrecords.srkit-000003.log"]
    reader = _reader(tmp_path)
    assert _scalars(reader, "train/loss") == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3)), (4, 9.0)]
    assert [s for s, _ in _scalars(reader, "train/lr")] == [1, 2, 3]


def test_visualdl_on_without_visualdl_installed_is_a_one_line_error(pairs_dir, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_visualdl(name, *args, **kwargs):
        if name.startswith("visualdl"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_visualdl)
    with pytest.raises(UserError, match="VisualDL is not installed"):
        run(tiny_recipe(pairs_dir, tmp_path / "run", log__visualdl=True))
    assert not list((tmp_path / "run").glob("ckpt/*.state"))


# ---------------------------------------------------------------------------------------------
# curves.png


def test_curves_are_redrawn_atomically_at_every_validation(pairs_dir, tmp_path, monkeypatch):
    written = []
    real = sr_train.runlog.write_bytes

    def spy(path, data, **kwargs):
        written.append(Path(path).name)
        return real(path, data, **kwargs)

    monkeypatch.setattr(sr_train.runlog, "write_bytes", spy)
    run(tiny_recipe(pairs_dir, tmp_path / "run"))
    assert written == ["curves.png", "curves.png"]  # validations at 3 and 6
    picture = cv2.imread(str(tmp_path / "run" / "curves.png"))
    assert picture.shape == (360, 1380, 3) and picture.std() > 0


def test_curves_figure_plots_loss_on_a_log_scale_and_val_scores_against_bicubic():
    history = [{"iter": i, "loss": 10.0 ** -i, "l_pix": 10.0 ** -i, "lr": 1e-3} for i in range(1, 5)]
    history += [{"iter": 2, "val_psnr": 30.0, "val_ssim": 0.80, "bicubic_psnr": 28.0, "bicubic_ssim": 0.75},
                {"iter": 4, "val_psnr": 31.0, "val_ssim": 0.85, "bicubic_psnr": 28.0, "bicubic_ssim": 0.75}]
    loss, psnr, ssim = run_figure(history).axes
    assert loss.get_yscale() == "log" and loss.get_xlabel() == "iteration" and "loss" in loss.get_ylabel()
    assert [line.get_label() for line in loss.lines] == ["loss"]  # l_pix alone is the loss itself
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3, 4]
    gan = [{"iter": 1, "loss": 1.0, "l_pix": 0.1, "l_percep": 0.8, "l_g_gan": 0.1, "l_d_real": 0.7, "l_d_fake": 0.6}]
    assert [line.get_label() for line in run_figure(gan).axes[0].lines] == [
        "loss", "l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake"]
    for ax, unit, model, bicubic in ((psnr, "PSNR (dB)", [30.0, 31.0], [28.0, 28.0]),
                                     (ssim, "SSIM", [0.80, 0.85], [0.75, 0.75])):
        lines = {line.get_label(): line for line in ax.lines}
        assert ax.get_ylabel() == unit and ax.get_xlabel() == "iteration"
        assert list(lines["model"].get_xdata()) == [2, 4] and list(lines["model"].get_ydata()) == model
        assert list(lines["bicubic"].get_ydata()) == bicubic
        assert ax.get_yticks().size > 2  # real ticks, not just the extremes
    assert all(not ax.lines for ax in run_figure([]).axes)  # an empty log draws empty panels
