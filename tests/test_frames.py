"""`srdata frames`: cuts, picks and drop reasons on a made-up episode, exact timestamps and names,
colour conversion per tagged matrix/range (8- and 10-bit), letterbox crop, re-runs, resume after a
kill, bad inputs, the command's table and exit codes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import ROOT, drawing, fade, hold, pan, write_video

from srdata.cli import main
from srdata.dedup import hex_to_u64
from srdata.errors import UserError
from srdata.frames import DEFAULT_SHARPNESS_FLOOR, DROP_REASONS, FramesOptions, extract_frames, find_videos, frame_name
from srdata.layout import FRAMES_LIST, FRAMES_STATE
from srdata.quality import NEAR_CONSTANT_LEVELS
from srdata.video import Colour, frame_colour, frame_rgb, open_video
from av.video.reformatter import VideoReformatter

W, H, FPS = 320, 180, 24
PAPER = [(250, 230, 200), (200, 230, 250), (220, 250, 210), (250, 210, 230), (235, 235, 200)]
HARD_CUTS = [1.5, 3.5, 6.5, 8.5, 10.0]  # seconds (frames 36, 84, 156, 204, 240)


def episode_frames() -> list[np.ndarray]:
    """A 11.5 s cartoon at 24 fps with known cuts (HARD_CUTS) and one of each kind of trouble."""
    black = np.zeros((H, W, 3), np.uint8)
    blurred = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in pan(drawing(4, W, PAPER[4]), H, 36, hold=2)]
    return (
        pan(drawing(0, W, PAPER[0]), H, 36, hold=2)  # 0.0-1.5 pan on twos: 3 picks
        + hold(drawing(1, W, PAPER[1]), H, 48)  # 1.5-3.5 a held drawing: 1 pick
        + fade(pan(drawing(2, W, PAPER[2]), H, 48, hold=3), 12)  # 3.5-5.5 pan on threes, fade out
        + [black] * 24  # 5.5-6.5 black
        + hold(drawing(1, W, PAPER[1]), H, 48)  # 6.5-8.5 the held drawing again: near-duplicates
        + pan(drawing(3, W, PAPER[3]), H, 36, hold=3, speed=6)  # 8.5-10.0 on threes: 3 picks
        + blurred  # 10.0-11.5 out of focus: blurry
    )


@pytest.fixture(scope="module")
def episode(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "episode.mp4", episode_frames())


@pytest.fixture(scope="module")
def episode_run(episode, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    report = extract_frames(FramesOptions(videos=[episode], out=out))
    return out, report


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / FRAMES_LIST).read_text().splitlines()]


def _state(out: Path) -> dict:
    return json.loads((out / FRAMES_STATE).read_text())


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# ----------------------------------------------------------------------------- the episode


def test_cuts_are_found_at_the_right_frames(episode_run):
    out, report = episode_run
    video = _state(out)["videos"]["episode"]
    assert video["decoded"] == len(episode_frames()) == 276
    assert set(HARD_CUTS) <= set(video["cuts"])
    # Nothing cuts a pan or a held shot; the fade to black may add a cut where black begins.
    extra = set(video["cuts"]) - set(HARD_CUTS)
    assert all(5.0 <= t < 6.5 for t in extra), extra
    assert video["scenes"] == len(video["cuts"]) + 1 == report.videos[0].scenes


def test_picks_per_scene_and_drop_reasons(episode_run):
    out, report = episode_run
    rows = _rows(out)
    by_start: dict[float, list[dict]] = {}
    for row in rows:
        by_start.setdefault(row["why"]["scene_start"], []).append(row)
    assert len(by_start[0.0]) == 3  # the pan on twos: one per third of the scene
    assert len(by_start[1.5]) == 1  # the held drawing: its other parts are near-duplicates
    assert 6.5 not in by_start  # the same drawing again later: near-duplicates of the first
    assert len(by_start[8.5]) == 3  # the pan on threes
    assert 10.0 not in by_start  # out of focus
    v = report.videos[0]
    assert v.kept == len(rows) and v.status == "done"
    assert v.dropped["near_duplicate"] >= 2 + 3
    assert v.dropped["near_constant"] >= 1  # black frames
    assert v.dropped["blurry"] >= 3
    assert sum(v.dropped.values()) + v.kept == v.decoded
    for row in rows:
        assert row["why"]["grey_spread"] >= NEAR_CONSTANT_LEVELS
        assert row["why"]["sharpness"] >= DEFAULT_SHARPNESS_FLOOR
    for scene_rows in by_start.values():
        times = sorted(r["time"] for r in scene_rows)
        assert all(b - a >= 0.5 for a, b in zip(times, times[1:]))
    hashes = [hex_to_u64(r["phash"]) for r in rows]
    assert min(bin(a ^ b).count("1") for i, a in enumerate(hashes) for b in hashes[i + 1 :]) > 4


def test_cut_threshold_and_sharpness_floor_options(episode, tmp_path):
    """--cut-threshold above any content change finds no cut; with --sharpness-floor 0 nothing
    is blurry and the out-of-focus shot (the last twelfth of the clip) gives a frame."""
    options = FramesOptions(videos=[episode], out=tmp_path, per_scene=12, cut_threshold=255.0, sharpness_floor=0.0)
    video = extract_frames(options).videos[0]
    assert video.scenes == 1 and _state(tmp_path)["videos"]["episode"]["cuts"] == []
    assert video.dropped["blurry"] == 0
    assert any(r["time"] >= 10.0 and r["why"]["sharpness"] < DEFAULT_SHARPNESS_FLOOR for r in _rows(tmp_path))


def test_names_and_timestamps_are_frame_exact(episode_run, episode):
    out, _ = episode_run
    rows = _rows(out)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in rows)
    for row in rows:
        assert row["time"] == round(row["frame_index"] / FPS, 6)
        assert row["file"] == frame_name("episode", Fraction(row["frame_index"], FPS))
    assert frame_name("ep", Fraction(123456, 1000)) == "ep__t000123.456.png"
    assert frame_name("ep", Fraction(1, 3)) == "ep__t000000.333.png"  # rounded down
    # Each PNG is exactly its frame: decode the video independently and compare.
    wanted = {r["frame_index"]: r["file"] for r in rows}
    container, stream = open_video(episode)
    reformatter = VideoReformatter()
    with container:
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                png = cv2.cvtColor(cv2.imread(str(out / wanted[index])), cv2.COLOR_BGR2RGB)
                assert np.array_equal(png, frame_rgb(frame, frame_colour(frame), reformatter))


def test_variable_frame_rate_cuts_and_times_are_exact(tmp_path):
    """24 fps, then 120 fps with two cuts inside, then 24 fps again: cuts and frame times come
    out exact (PySceneDetect counts its minimum scene length in frames of the stream's rate)."""
    sections = [
        (pan(drawing(0, W, PAPER[0]), H, 48, hold=2), 50),  # 0-2 s at 24 fps (time base 1/1200)
        (pan(drawing(1, W, PAPER[1]), H, 60, hold=2), 10),  # 2-2.5 s at 120 fps
        (pan(drawing(3, W, PAPER[3]), H, 120, hold=2), 10),  # 2.5-3.5 s at 120 fps
        (pan(drawing(5, W, PAPER[2]), H, 24, hold=2), 50),  # 3.5-4.5 s at 24 fps
    ]
    frames, pts, tick = [], [], 0
    for shots, step in sections:  # each frame lasts `step` ticks of 1/1200 s
        for shot in shots:
            frames.append(shot)
            pts.append(tick)
            tick += step
    path = write_video(tmp_path / "vfr.mp4", frames, pts=pts, time_base=Fraction(1, 1200))
    report = extract_frames(FramesOptions(videos=[path], out=tmp_path / "out", per_scene=2, min_gap=0.2))
    assert _state(tmp_path / "out")["videos"]["vfr"]["cuts"] == [2.0, 2.5, 3.5]
    times = {}
    container, stream = open_video(path)
    with container:
        for index, frame in enumerate(container.decode(stream)):
            times[index] = Fraction(frame.pts) * Fraction(stream.time_base.numerator, stream.time_base.denominator)
    rows = _rows(tmp_path / "out")
    assert report.videos[0].kept == len(rows) == 8
    for row in rows:
        assert row["file"] == frame_name("vfr", times[row["frame_index"]])
        start, end = row["why"]["scene_start"], row["why"]["scene_end"]
        assert start <= row["time"] < end and [start, end] in ([0, 2], [2, 2.5], [2.5, 3.5], [3.5, 4.5])


def test_same_video_same_bytes(episode_run, episode, tmp_path):
    out, _ = episode_run
    again = tmp_path / "again"
    extract_frames(FramesOptions(videos=[episode], out=again))
    assert _files(again) == _files(out)


# ----------------------------------------------------------------------------- colour


def _reference_rgb(y, u, v, matrix: str, full: bool, bits: int) -> np.ndarray:
    """RGB of one Y'CbCr sample by the textbook equations (BT.709: Kr .2126, Kb .0722; BT.601:
    Kr .299, Kb .114), rounded to 8 bits."""
    kr, kb = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}[matrix]
    s = 2 ** (bits - 8)
    if full:
        luma, cb, cr = y / (255 * s), (u - 128 * s) / (255 * s), (v - 128 * s) / (255 * s)
    else:
        luma, cb, cr = (y - 16 * s) / (219 * s), (u - 128 * s) / (224 * s), (v - 128 * s) / (224 * s)
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.rint(np.array([r, g, b]) * 255), 0, 255)


# 8-bit Y'CbCr of flat patches: white, black, saturated colours, skin, a mid grey.
_PATCHES = [(235, 128, 128), (16, 128, 128), (81, 90, 240), (145, 54, 34), (41, 240, 110),
            (120, 160, 60), (180, 100, 200), (128, 128, 128)]


def _patch_video(path: Path, matrix, colour_range, bits: int, width: int = 64, height: int = 32) -> Path:
    """Lossless video of 16x16 flat patches with exact Y'CbCr values, tagged as asked."""
    pix_fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    frame = av.VideoFrame(width, height, pix_fmt)
    dtype, s = (np.uint8, 1) if bits == 8 else (np.uint16, 4)
    planes = [np.zeros((height, width), dtype), np.zeros((height // 2, width // 2), dtype),
              np.zeros((height // 2, width // 2), dtype)]
    for i in range(width * height // 256):
        y, u, v = _PATCHES[i % len(_PATCHES)]
        bx, by = (i % (width // 16)) * 16, (i // (width // 16)) * 16
        planes[0][by : by + 16, bx : bx + 16] = y * s
        planes[1][by // 2 : by // 2 + 8, bx // 2 : bx // 2 + 8] = u * s
        planes[2][by // 2 : by // 2 + 8, bx // 2 : bx // 2 + 8] = v * s
    for plane, values in zip(frame.planes, planes):
        np.frombuffer(plane, dtype).reshape(plane.height, -1)[:, : plane.width] = values
    return write_video(path, [frame] * 3, pix_fmt=pix_fmt, matrix=matrix, colour_range=colour_range,
                       options={"qp": "0"})


@pytest.mark.parametrize(
    "matrix, colour_range, bits",
    [("bt709", "tv", 8), ("bt601", "tv", 8), ("bt709", "pc", 8), ("bt709", "tv", 10), ("bt601", "pc", 10)],
)
def test_colour_follows_the_stream_tags(tmp_path, matrix, colour_range, bits):
    path = _patch_video(tmp_path / "patches.mkv", matrix, colour_range, bits)
    container, stream = open_video(path)
    with container:
        frame = next(container.decode(stream))
        colour = frame_colour(frame)
        rgb = frame_rgb(frame, colour, VideoReformatter())
    assert colour == Colour({"bt709": "BT.709", "bt601": "BT.601"}[matrix], colour_range == "pc", False)
    other = {"bt709": "bt601", "bt601": "bt709"}[matrix]
    worst_other = 0
    for i, (y, u, v) in enumerate(_PATCHES):
        centre = rgb[(i // 4) * 16 + 8, (i % 4) * 16 + 8].astype(int)
        s = 2 ** (bits - 8)
        expected = _reference_rgb(y * s, u * s, v * s, matrix, colour_range == "pc", bits)
        assert np.abs(centre - expected).max() <= 1, (i, centre, expected)
        wrong = _reference_rgb(y * s, u * s, v * s, other, colour_range == "pc", bits)
        worst_other = max(worst_other, np.abs(centre - wrong).max())
    assert worst_other >= 20  # the other matrix would be visibly wrong: the test can fail


@pytest.mark.parametrize("size, matrix", [((64, 32), "BT.601"), ((1280, 720), "BT.709")])
def test_untagged_colour_is_guessed_from_the_size(tmp_path, size, matrix):
    path = _patch_video(tmp_path / "untagged.mkv", None, None, 8, *size)
    container, stream = open_video(path)
    with container:
        frame = next(container.decode(stream))
    assert frame_colour(frame) == Colour(matrix, False, True)
    assert frame_colour(frame).describe() == f"{matrix} limited range (guessed)"


def test_frames_are_written_in_the_tagged_colours(tmp_path):
    path = _patch_video(tmp_path / "patches.mkv", "bt709", "tv", 10)
    report = extract_frames(FramesOptions(videos=[path], out=tmp_path / "out"))
    assert report.videos[0].colour == "BT.709 limited range (tagged)"
    (png,) = sorted((tmp_path / "out").glob("*.png"))
    rgb = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    for i, (y, u, v) in enumerate(_PATCHES):
        expected = _reference_rgb(4 * y, 4 * u, 4 * v, "bt709", False, 10)
        assert np.abs(rgb[(i // 4) * 16 + 8, (i % 4) * 16 + 8] - expected).max() <= 1


# ----------------------------------------------------------------------------- crop


def test_crop_auto_removes_letterbox_bars(tmp_path):
    bar = 22
    shots = pan(drawing(0, W, PAPER[0]), H - 2 * bar, 48, hold=2) + pan(drawing(3, W, PAPER[3]), H - 2 * bar, 48)
    boxed = [np.pad(f, ((bar, bar), (0, 0), (0, 0))) for f in shots]
    path = write_video(tmp_path / "letterbox.mp4", boxed)
    report = extract_frames(FramesOptions(videos=[path], out=tmp_path / "crop", crop="auto"))
    assert report.videos[0].crop == [0, bar, W, H - bar]
    sizes = {cv2.imread(str(p)).shape[:2] for p in (tmp_path / "crop").glob("*.png")}
    assert sizes == {(H - 2 * bar, W)}
    extract_frames(FramesOptions(videos=[path], out=tmp_path / "full"))
    assert {cv2.imread(str(p)).shape[:2] for p in (tmp_path / "full").glob("*.png")} == {(H, W)}


# ----------------------------------------------------------------------------- re-runs


@pytest.fixture(scope="module")
def second_video(tmp_path_factory) -> Path:
    frames = pan(drawing(5, W, PAPER[2]), H, 48, hold=2) + hold(drawing(6, W, PAPER[3]), H, 48)
    return write_video(tmp_path_factory.mktemp("videos2") / "second.mkv", frames)


def test_rerun_skips_finished_videos(episode, second_video, tmp_path):
    out = tmp_path / "out"
    extract_frames(FramesOptions(videos=[episode, second_video], out=out))
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    report = extract_frames(FramesOptions(videos=[episode, second_video], out=out))
    assert [v.status for v in report.videos] == ["skipped", "skipped"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_killed_run_resumes_to_the_same_bytes(episode, second_video, tmp_path):
    clean = tmp_path / "clean"
    extract_frames(FramesOptions(videos=[episode, second_video], out=clean))
    out = tmp_path / "killed"

    def kill(video, decoded, total):
        if video.name == "second" and decoded == 70:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_frames(FramesOptions(videos=[episode, second_video], out=out), kill)
    assert list(_state(out)["videos"]) == ["episode"]
    assert any(p.name.startswith("second__") for p in out.glob("*.png"))  # half done
    # a temp file the writer left for a frame of a long-named video (its temp names are cut short)
    (out / (".second__" + "x" * 48 + ".0a1b2c3d.tmp")).write_bytes(b"x")
    report = extract_frames(FramesOptions(videos=[episode, second_video], out=out))
    assert [v.status for v in report.videos] == ["skipped", "done"]
    assert _files(out) == _files(clean)


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_same_frames(episode, second_video, tmp_path):
    clean = tmp_path / "clean"
    extract_frames(FramesOptions(videos=[episode, second_video], out=clean))
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "srdata.cli", "frames", str(episode), str(second_video), "--out", str(out)]
    for _ in range(3):  # kill it at a few different moments, then let it finish
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and len(list(out.glob("*.png"))) > len(list(clean.glob("*.png"))) // 3:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert main(["frames", str(episode), str(second_video), "--out", str(out)]) == 0
    assert _files(out) == _files(clean)


def test_adding_a_video_keeps_existing_frames(episode, second_video, tmp_path):
    out = tmp_path / "out"
    extract_frames(FramesOptions(videos=[second_video], out=out))
    first = _files(out)
    report = extract_frames(FramesOptions(videos=[episode, second_video], out=out))
    assert [v.status for v in report.videos] == ["done", "skipped"]
    after = _files(out)
    assert all(after[name] == data for name, data in first.items() if name.endswith(".png"))
    assert any(name.startswith("episode__") for name in after)


def test_a_changed_video_is_redone(second_video, tmp_path):
    video = tmp_path / "second.mkv"
    shutil.copy(second_video, video)
    out = tmp_path / "out"
    extract_frames(FramesOptions(videos=[video], out=out))
    old = {p.name for p in out.glob("*.png")}
    write_video(video, pan(drawing(7, W, PAPER[1]), H, 24, hold=2))  # 1 s, one scene
    report = extract_frames(FramesOptions(videos=[video], out=out))
    assert report.videos[0].status == "done"
    new = {p.name for p in out.glob("*.png")}
    assert new == {r["file"] for r in _rows(out)} and new != old
    assert all(r["time"] < 1.0 for r in _rows(out))


def test_other_settings_are_refused(episode_run, episode):
    out, _ = episode_run
    with pytest.raises(UserError, match="--per-scene 3 \\(now 2\\)"):
        extract_frames(FramesOptions(videos=[episode], out=out, per_scene=2))


# ----------------------------------------------------------------------------- inputs


def test_video_names(tmp_path):
    (tmp_path / "show" / "s1").mkdir(parents=True)
    for name in ("show/s1/ep01.mkv", "show/ep02.MP4", "show/notes.txt", "show/.hidden.mkv", "other/ep01.mkv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    videos = find_videos([tmp_path / "show", tmp_path / "other" / "ep01.mkv"])
    assert [(v.name, v.path.relative_to(tmp_path).as_posix()) for v in videos] == [
        ("ep01", "other/ep01.mkv"), ("ep02", "show/ep02.MP4"), ("s1__ep01", "show/s1/ep01.mkv"),
    ]
    with pytest.raises(UserError, match="would both be named 'ep01'"):
        find_videos([tmp_path / "other" / "ep01.mkv", tmp_path / "show" / "s1" / "ep01.mkv"])
    with pytest.raises(UserError, match="no such file"):
        find_videos([tmp_path / "missing.mkv"])


def test_bad_inputs_one_line_each_others_done(tmp_path, second_video, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(second_video, videos / "good.mkv")
    (videos / "notes.mp4").write_text("not a video at all\n")
    data = second_video.read_bytes()
    (videos / "cut.mkv").write_bytes(data[: len(data) // 2])
    audio = av.open(str(tmp_path / "song.m4a"), "w")  # not in the folder: .m4a is not searched for
    stream = audio.add_stream("aac", rate=44100)
    samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    samples.sample_rate = 44100
    for index in range(10):
        samples.pts = index * 1024
        for packet in stream.encode(samples):
            audio.mux(packet)
    for packet in stream.encode():
        audio.mux(packet)
    audio.close()
    out = tmp_path / "out"
    assert main(["frames", str(videos), str(tmp_path / "song.m4a"), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3, captured.err
    assert any("cut.mkv: truncated (the video ends at" in line for line in lines)
    assert any("notes.mp4: not a video" in line for line in lines)
    assert any("song.m4a: no video stream" in line for line in lines)
    assert list(_state(out)["videos"]) == ["good"]
    assert not any(p.name.startswith(("cut__", "notes__", "song__")) for p in out.iterdir())
    assert "good" in captured.out and "failed" in captured.out


def test_command_table_and_usage_errors(episode, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["frames", str(episode), "--out", str(out), "--crop", "auto"]) == 0
    printed = capsys.readouterr().out
    state = _state(out)["videos"]["episode"]
    cells = next(line.split() for line in printed.splitlines() if line.split()[:1] == ["episode"])
    assert cells[:5] == ["episode", "done", str(state["decoded"]), str(state["scenes"]), str(state["kept"])]
    assert cells[5:] == [str(state["dropped"][r]) for r in DROP_REASONS]
    assert "episode: BT.709 limited range (tagged)" in printed
    assert main(["frames", str(episode), "--out", str(tmp_path / "o"), "--per-scene", "0"]) == 2
    assert main(["frames", str(episode), "--out", str(tmp_path / "o"), "--crop", "maybe"]) == 2
    assert main(["frames", "--out", str(tmp_path / "o")]) == 2
    assert main(["frames", str(tmp_path / "nothing.mkv"), "--out", str(tmp_path / "o")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("srdata: error: ") for line in errors)


# ----------------------------------------------------------------------------- srdata build on frames


@pytest.fixture(scope="module")
def frames_src(tmp_path_factory) -> Path:
    """RAW for srdata build: frames of four two-scene videos in RAW/show/ (with frames.jsonl), and
    one plain image at RAW's top that no video made."""
    raw = tmp_path_factory.mktemp("raw")
    videos = []
    for k in range(4):
        shots = pan(drawing(2 * k, W, PAPER[k]), H, 30, hold=2) + pan(drawing(2 * k + 1, W, PAPER[k + 1]), H, 30, hold=3)
        videos.append(write_video(tmp_path_factory.mktemp("v") / f"clip{k}.mp4", shots))
    report = extract_frames(FramesOptions(videos=videos, out=raw / "show", per_scene=2))
    assert all(v.status == "done" and v.scenes == 2 for v in report.videos)
    cv2.imwrite(str(raw / "poster.png"), cv2.cvtColor(drawing(12, W), cv2.COLOR_RGB2BGR))
    return raw


def _build(src: Path, out: Path, **options) -> dict[str, dict]:
    from srdata.build import build_dataset
    from srdata.build_options import BuildOptions

    build_dataset(BuildOptions(src=src, out=out, scale=2, workers=1, **options), progress=False)
    return {line["source"]: line for line in (json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines())}


def _splits_by(lines: dict[str, dict], key) -> dict[str, set[str]]:
    """split(s) per key(source) over the frames written (dropped duplicates have no split)."""
    found: dict[str, set[str]] = {}
    for source, line in lines.items():
        if line["split"] is not None and source.startswith("show/"):
            found.setdefault(key(source), set()).add(line["split"])
    return found


def test_build_keeps_each_video_or_scene_in_one_split(frames_src, tmp_path):
    origin = {f"show/{r['file']}": (r["video"], r["scene"]) for r in _rows(frames_src / "show")}
    straddled = {"video": False, "scene": False, "image": False}
    for seed in range(4):
        by = {}
        for group_by in straddled:
            lines = _build(frames_src, tmp_path / f"{group_by}{seed}", val=0.3, test=0.3, seed=seed, group_by=group_by)
            by[group_by] = lines
            videos = _splits_by(lines, lambda s: origin[s][0])
            scenes = _splits_by(lines, lambda s: origin[s])
            straddled[group_by] |= any(len(v) > 1 for v in videos.values())
            if group_by == "video":
                assert all(len(v) == 1 for v in videos.values()), videos
            if group_by == "scene":
                assert all(len(v) == 1 for v in scenes.values()), scenes
        assert by["video"]["show/" + _rows(frames_src / "show")[0]["file"]]["split_group"] == "video:show/clip0"
        assert by["scene"]["show/" + _rows(frames_src / "show")[0]["file"]]["split_group"] == "scene:show/clip0#0"
        assert by["video"]["poster.png"]["split_group"] is None
        # A plain image is split by its content, as before: the same split whatever the grouping.
        assert len({by[g]["poster.png"]["split"] for g in by}) == 1
    # With this many frames, splitting by scene or by image does cut some video in two: the
    # video grouping above is what keeps them whole.
    assert straddled == {"video": False, "scene": True, "image": True}


def test_build_counts_take_whole_videos(frames_src, tmp_path):
    lines = _build(frames_src, tmp_path / "ds", val=1, test=1)
    origin = {f"show/{r['file']}": r["video"] for r in _rows(frames_src / "show")}
    videos = _splits_by(lines, origin.get)
    assert all(len(v) == 1 for v in videos.values())
    splits = {s for v in videos.values() for s in v} | {lines["poster.png"]["split"]}
    assert {"val", "test"} <= splits  # one group (a whole video, or the poster) each
    dataset = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert dataset["settings"]["group_by"] == "video"
    assert sum(dataset["split_groups"].values()) == 4


def test_bundled_demo_clip_gives_the_readme_counts(tmp_path):
    """README quotes these numbers for `srdata frames data/demo/episode.mp4`."""
    clip = ROOT / "data" / "demo" / "episode.mp4"
    (video,) = extract_frames(FramesOptions(videos=[clip], out=tmp_path)).videos
    assert (video.decoded, video.scenes, video.kept) == (264, 6, 10)
    assert video.dropped == {"near_duplicate": 16, "near_constant": 4, "blurry": 12, "not_picked": 222}
    assert video.colour == "BT.709 limited range (tagged)"
