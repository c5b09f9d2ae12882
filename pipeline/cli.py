"""Command line: parse, call the library, report. All the work is in the library.

Exit codes (for scripts): 0 every input scored (or skipped, or had no speech);
1 at least one input failed, or the set-up is broken; 2 bad command line (argparse);
130 interrupted with Ctrl-C, 143 stopped by SIGTERM, 129 by SIGHUP (finished CSVs are kept, none is
half-written, and a batch's summary.csv has a row for each).
The batch itself (models loaded once, local or on Ray) is ``pipeline.api.score_videos``.

A light start: ``--help``, argument errors and a missing input are answered before any
model library (or NumPy) is imported; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from model.schema import NEUTRAL_BAND, SCORE_MAX, SCORE_MIN
from pipeline.api import ENGINES
from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.languages import ENGLISH, WHISPER_LANGUAGE_CODES
from pipeline.output import OUTPUT_FORMATS
from storage.locations import DEFAULT_WEIGHTS

if TYPE_CHECKING:
    from pipeline.models import Models

__all__ = ["main", "build_parser", "setup_logging"]

log = logging.getLogger("pipeline")

EXAMPLES = f"""\
examples:
  python -m pipeline run examples/example.mp4            # one video -> out/example.csv
  python -m pipeline run videos/ --out results/          # every media file in videos/ + results/summary.csv
  python -m pipeline run talk.mp4 --asr base             # multilingual Whisper base (detects the language)
  python -m pipeline run videos/ --skip-existing         # resume an interrupted batch
  python -m pipeline run clip.mp4 --report               # + out/clip.png and out/clip.html
  python -m pipeline report out/                         # rebuild plots and HTML from the CSVs
  python -m pipeline text reviews.txt --out scores.csv   # one score per line, text path only (English)
  python -m pipeline extract --dataset mydata/ --out feats/   # training features (training.train --features)
  python -m pipeline run videos/ --engine ray            # one worker per core (requirements-ray.txt)

Each CSV has one row per utterance: start_s, end_s, text, sentiment in [{SCORE_MIN:g}, {SCORE_MAX:g}]
(MOSI scale), polarity (|score| < {NEUTRAL_BAND:g} is neutral), what the text, voice and face say alone
(text_score, voice_score, face_score) and the signals behind the score; empty where not observed.
An utterance longer than the text encoder's window (128 tokens) is scored over overlapping windows, pooled.
Everything runs offline on the CPU; models come from installed packages and weights/.
"""


TEXT_NOTES = """\
Long lines are not cut: a line longer than the text encoder's window (128 tokens, about 100 words) is
scored over windows of whole words, each overlapping the next by about half, and the window scores are
averaged with each word counted once (in the window where it sits nearest the middle).

Language: the model reads English only. Each line gets a light check (its script, and how many of its
words are grammar words of English or of German, Spanish, French, Italian, Portuguese or Dutch); the
language column says "en" or the language the line looks like. A line that looks like another language
is not scored (empty sentiment and polarity, an error naming the line) and the exit code is 1, as the
video path refuses non-English speech; --language en scores it anyway. Short answers ("ok", "no way"),
numbers and English with a few foreign words pass as English.

examples:
  python -m pipeline text reviews.txt --out scores.csv
  echo "I loved it" | python -m pipeline text -
  python -m pipeline text mixed.txt --language en          # score every line, whatever its language
"""


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (``--fps``, ``--max-duration``); NaN, inf, 0 and below are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value


def at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def whisper_language(text: str) -> str:
    """argparse type: one of Whisper's language codes (``pipeline.languages``)."""
    code = text.strip().lower()
    if code not in WHISPER_LANGUAGE_CODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Whisper language code; use one of {', '.join(WHISPER_LANGUAGE_CODES)}")
    return code


def english_only(text: str) -> str:
    """argparse type of ``--language`` for ``run`` and ``text`` alike: "en" (the sentiment model reads
    English only, so another code could only fail later, after every model loaded)."""
    code = whisper_language(text)
    if code != ENGLISH:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the sentiment model reads English only; --language en scores the speech or text as "
            "English whatever language it is")
    return code


def _add_logging_flags(parser: argparse.ArgumentParser, verbose: object, quiet: object) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=verbose, help="more log detail (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=quiet, help="only errors")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (light: builds without importing any model library)."""
    # -v/-q work before or after the command: the sub-commands' copies default to SUPPRESS, so a
    # sub-command not given them leaves what came before it (argparse copies a sub-command's
    # defaults over the top level's).
    logging_flags = argparse.ArgumentParser(add_help=False)
    _add_logging_flags(logging_flags, verbose=argparse.SUPPRESS, quiet=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Per-utterance multimodal sentiment (text, voice, face) for videos, offline on a CPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    _add_logging_flags(parser, verbose=0, quiet=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run", help="score videos (files or folders)", epilog=EXAMPLES, parents=[logging_flags],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score each utterance of each video: transcribe (Whisper), measure voice and face, "
        "align them per word and run the MIAR model.",
    )
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="video or audio files, or folders of them (not searched recursively)")
    run.add_argument("--out", type=Path, default=Path("out"), metavar="DIR",
                     help="folder for <video stem>.csv files and, for a batch, summary.csv (default: out); "
                     "inputs of one batch with the same stem keep their extension (clip.mp4.csv), then their "
                     "folder's name (a_clip.mp4.csv)")
    run.add_argument("--asr", default=None, metavar="MODEL",
                     help="Whisper model: tiny.en (default, English, fastest), base (multilingual) or a "
                     "CTranslate2 model folder")
    run.add_argument("--language", type=english_only, default=None, metavar="en",
                     help="skip language identification and score the speech as English, whatever language it "
                     "is; by default speech identified as another language is reported as failed, not scored")
    run.add_argument("--fps", type=positive_number, default=None, metavar="N",
                     help="frames per second sampled for the face (default 4; lower is faster)")
    run.add_argument("--max-duration", type=positive_number, default=None, metavar="SECONDS",
                     help="refuse media longer than this (default 21600, 6 hours), right after reading its header")
    run.add_argument("--weights", type=Path, default=None, metavar="DIR",
                     help=f"MIAR weights folder (default: {DEFAULT_WEIGHTS.relative_to(DEFAULT_WEIGHTS.parents[1])})")
    run.add_argument("--skip-existing", action="store_true",
                     help="skip inputs already done in --out (resume a batch): the output reads back complete and "
                     "its summary.csv row has the same weights (SHA-256) and ASR model; anything else is scored again")
    run.add_argument("--no-progress", action="store_true",
                     help="do not draw progress bars (they are drawn only when stderr is a terminal)")
    run.add_argument("--report", action="store_true",
                     help="also write <stem>.png (sentiment over time) and <stem>.html (self-contained report)")
    run.add_argument("--format", choices=OUTPUT_FORMATS, default="csv",
                     help="per-video output: csv (default) or jsonl (one JSON object per utterance); "
                     "summary.csv stays CSV")
    run.add_argument("--engine", choices=ENGINES, default="local",
                     help="local: this process (default); ray: one worker per CPU, each loading the models once "
                     "(pip install -r requirements-ray.txt)")
    run.add_argument("--ray-address", default=None, metavar="ADDR",
                     help="Ray cluster to join with --engine ray (e.g. 10.0.0.5:6379 from 'ray start --head'); "
                     "by default a local Ray is started for the batch")
    text = sub.add_parser(
        "text", help="score sentences from a text file (one per line) with the text path only",
        parents=[logging_flags], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score each non-blank line of FILE with the shipped model's text path (voice and face\n"
        "masked) and write CSV (line, text, sentiment, polarity, language) to stdout or --out.",
        epilog=TEXT_NOTES,
    )
    text.add_argument("file", type=Path, metavar="FILE", help="UTF-8 text file, one text per line ('-' for stdin)")
    text.add_argument("--out", type=Path, default=None, metavar="CSV", help="write the CSV here instead of stdout")
    text.add_argument("--weights", type=Path, default=None, metavar="DIR", help="MIAR weights folder")
    text.add_argument("--language", type=english_only, default=None, metavar="en",
                      help="score every line as English, whatever the language check says (the language "
                      "column still shows it); by default a line that looks like another language is not scored")
    rep = sub.add_parser(
        "report", help="rebuild <stem>.png and <stem>.html from the CSVs in an output folder",
        parents=[logging_flags],
        description="For each <stem>.csv in FOLDER (written by 'run'), draw the sentiment plot and write the "
        "HTML report beside it. Metadata comes from summary.csv and from probing the video when it is still there.",
    )
    rep.add_argument("folder", type=Path, metavar="FOLDER", help="an output folder of 'python -m pipeline run'")
    ext = sub.add_parser(
        "extract", help="extract training features from an MMSA-layout dataset (label.csv + Raw/)",
        parents=[logging_flags],
        description="Run the inference extractors on every clip of DIR (label.csv with video_id,clip_id,text,label,"
        "mode; media at Raw/<video_id>/<clip_id>.mp4), one utterance per clip, and write per-clip .npz files and "
        "manifest.json to FEATURES_DIR for 'python -m training.train --features'. Resumable: clips already "
        "extracted are skipped. Exit 1 if any clip failed (failures are listed in the manifest).",
    )
    ext.add_argument("--dataset", type=Path, required=True, metavar="DIR", help="MMSA-layout dataset folder")
    ext.add_argument("--out", type=Path, required=True, metavar="FEATURES_DIR", help="features folder to write")
    ext.add_argument("--workers", type=at_least_one, default=1, metavar="N",
                     help="processes, each loading the models once (default 1: this process)")
    ext.add_argument("--asr", default=None, metavar="MODEL", help="Whisper model (default tiny.en, as 'run')")
    ext.add_argument("--fps", type=positive_number, default=None, metavar="N",
                     help="face frames per second (default 4)")
    return parser


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 utterance", "3 utterances"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class OneLineFormatter(logging.Formatter):
    """Every log record on one line: control characters in its message (a newline or a carriage return
    in a file name) are written escaped (``\\n``), so one record never looks like two. A traceback
    still follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.isprintable():
            return super().format(record)
        saved = record.msg, record.args
        record.msg = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        record.args = None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = saved


def setup_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr (stdout is for results only), one line per record."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if verbose < 2:  # third-party chatter stays out of an ordinary run
        for noisy in ("faster_whisper", "httpx", "urllib3", "PIL", "matplotlib", "numba"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class _TqdmProgress:
    """Renders the batch progress callback as tqdm bars on stderr, in media seconds.

    One bar per stage of the current video; stages that run at the same time (speech
    recognition and the face) get a bar each. Called from two threads; tqdm serialises
    its own writes. Bars are drawn only when stderr is a terminal (tqdm's ``disable=None``),
    so a log file or a pipe never gets their escape codes.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.video: Path | None = None
        self.bars: dict[str, object] = {}

    def __call__(self, video: Path, stage: str, done: float, total: float) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if video != self.video:
            self.close()
            self.video = video
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=round(total, 1), unit="s", desc=f"{video.name}: {stage}", leave=False, file=sys.stderr,
                position=len(self.bars), disable=None,
                bar_format="{desc:>30} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s",
            )
        bar.n = round(min(done, total), 1)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        self.video = None


#: Signals that stop a command as Ctrl-C does (finished files kept, summary rows written, one log line):
#: ``timeout`` and service managers send SIGTERM, a closing terminal SIGHUP. Exit code 128 + the signal.
STOP_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGHUP")
#: The stop signal received by the running command (None: none, or Ctrl-C).
_stopped_by: int | None = None


def _on_stop_signal(signum: int, frame: object) -> None:
    global _stopped_by
    if _stopped_by is None:  # the first one stops the command; repeats must not break its clean-up
        _stopped_by = signum
        raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` as Ctrl-C does (main thread only)."""
    global _stopped_by
    _stopped_by = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _on_stop_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interruption() -> str:
    """How the command was stopped, for its last log line."""
    return "interrupted" if _stopped_by is None else f"stopped by {signal.Signals(_stopped_by).name}"


def _interrupted_exit() -> int:
    """130 after Ctrl-C (SIGINT), 128 + the signal's number after a stop signal (143 for SIGTERM)."""
    return 128 + (signal.SIGINT if _stopped_by is None else _stopped_by)


def run_command(args: argparse.Namespace, models: Models | None = None) -> int:
    from pipeline.inputs import BatchPlan, RunOptions, WriteOptions

    if models is not None and (args.asr is not None or args.weights is not None):
        log.error("--asr and --weights choose models to load; they cannot change models already loaded")
        return 1
    try:  # before anything heavy: a missing input, or an output over an input, is answered at once
        plan = BatchPlan.build(args.paths, WriteOptions(args.out, args.format, args.report),
                               RunOptions(args.skip_existing, args.engine, args.ray_address))
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1

    from tqdm import tqdm

    from pipeline.api import BatchInterrupted, score_videos
    from pipeline.config import PipelineConfig
    from pipeline.jobs import VideoOutcome

    config = PipelineConfig().with_overrides(
        asr_model=args.asr, language=args.language, fps=args.fps, max_duration_s=args.max_duration,
        weights_dir=args.weights,
    )
    show = not args.no_progress and not args.quiet
    # disable=None: tqdm draws only on a terminal, so logs and pipes get no escape codes
    videos = tqdm(total=len(plan.items), desc="videos", unit="video", file=sys.stderr,
                  disable=None if show and plan.is_batch else True)
    stages = _TqdmProgress(show and args.engine == "local")

    def on_outcome(outcome: VideoOutcome) -> None:
        stages.close()
        videos.update(1)
        if outcome.status == "skipped":
            log.info("%s: %s is done (same weights and ASR model), skipped", outcome.path, outcome.output)
        elif outcome.status == "failed":
            log.error("%s", _with_flag_hint(outcome.error))  # our errors name the file themselves
        elif outcome.result is not None:
            result = outcome.result
            for warning in result.warnings:
                log.warning("%s: %s", outcome.path.name, warning)
            log.info("%s: %s, mean sentiment %s -> %s (%.1f s)", outcome.path.name,
                     _count(len(result.utterances), "utterance"),
                     "n/a" if result.mean_sentiment is None else f"{result.mean_sentiment:+.2f}",
                     outcome.output, outcome.seconds)

    summary = plan.summary_to_write()
    interrupted = False
    try:
        outcomes = score_videos(plan, config, models=models, progress=stages, on_outcome=on_outcome)
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1
    except BatchInterrupted as e:
        interrupted = True
        outcomes = e.outcomes
        log.error("%s: %d of %s done; finished files are kept%s", _interruption(), len(outcomes),
                  _count(e.total, "input"), f", {summary} has their rows" if summary is not None else "")
    finally:
        stages.close()
        videos.close()
    if summary is not None:
        log.info("summary: %s (%s)", summary, _status_counts(outcomes))
    if interrupted:
        return _interrupted_exit()
    return 1 if any(o.status == "failed" for o in outcomes) else 0


#: The option a media error names when a file is longer than allowed (``extractors.media``), and the flag
#: of ``run`` that sets it.
_MAX_DURATION_OPTION = "(MediaOptions.max_duration_s)"


def _with_flag_hint(error: str) -> str:
    """A library error as ``run`` reports it: one naming ``MediaOptions.max_duration_s`` (the library's
    name for the limit) also says which flag raises it."""
    if error.endswith(_MAX_DURATION_OPTION):
        return f"{error}; raise it with --max-duration SECONDS"
    return error


#: Statuses of a batch's outcomes, in the order the summary line counts them.
_STATUS_WORDS = (("ok", "ok"), ("no_speech", "no speech"), ("skipped", "skipped"), ("failed", "failed"))


def _status_counts(outcomes: Sequence[object]) -> str:
    """"3 ok, 2 no speech, 1 failed": every status present, and always the failures."""
    counts = {status: sum(getattr(o, "status", "") == status for o in outcomes) for status, _ in _STATUS_WORDS}
    return ", ".join(f"{counts[status]} {word}" for status, word in _STATUS_WORDS
                     if counts[status] or status == "failed")


def report_command(args: argparse.Namespace) -> int:
    from pipeline.report import rebuild_reports

    skipped: list[str] = []
    try:
        written = rebuild_reports(args.folder, skipped=skipped)
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1
    for html in written:
        log.info("%s", html)
    if skipped:
        log.error("%d report%s written, %d file%s skipped (see the warnings above)", len(written),
                  "" if len(written) == 1 else "s", len(skipped), "" if len(skipped) == 1 else "s")
    return 1 if skipped else 0


#: Lines scored at a time by ``text``: rows are written batch by batch, so memory stays flat in the file's size.
TEXT_BATCH_LINES = 256


def _open_text_lines(file: Path) -> IO[bytes]:
    """FILE ('-': stdin) opened for reading its lines as bytes (decoded line by line, ``_numbered_lines``).

    Raises:
        PipelineError: The file cannot be opened (or is a folder).
    """
    if str(file) == "-":
        return sys.stdin.buffer
    try:
        return open(file, "rb")
    except OSError as e:
        raise PipelineError(f"{file}: cannot read as UTF-8 text: {e.strerror or e}") from e


def _numbered_lines(f: IO[bytes], file: Path, on_line: Callable[[int], None]) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of each line with words; blank lines skipped, wordless ones warned about.

    Only "\\n" ends a line (bytes are split there), so a U+2028, "\\x85" or lone "\\r" inside a line
    does not shift the line numbers (``str.splitlines`` would split there); each line is decoded on
    its own, so an undecodable byte is reported on its own line (UTF-8 never spans a "\\n").

    Raises:
        PipelineError: A line is not UTF-8 (names the line and the byte).
    """
    from extractors.text import normalise_text

    for n, raw in enumerate(f, 1):
        on_line(len(raw))
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise PipelineError(f"{file}:{n}: byte {raw[e.start]:#04x} at column {e.start + 1} is not UTF-8 "
                                "(Latin-1 or another code page?); save the file as UTF-8") from e
        if line and normalise_text(line).split():
            yield n, line
        elif line:
            log.warning("line %d has no words, skipped: %r", n, line[:200])


def _batches(lines: Iterator[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for item in lines:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


#: Lines refused by the language check that are named one by one; the rest are counted.
TEXT_REFUSALS_LISTED = 10


def text_command(args: argparse.Namespace) -> int:
    from storage.files import outputs_over_inputs

    if args.out is not None and str(args.file) != "-" and outputs_over_inputs([args.file], [args.out]):
        log.error("--out %s is the input %s itself: writing the scores would replace the texts; nothing was "
                  "scored (write them to another file)", args.out, args.file)
        return 1
    try:
        source = _open_text_lines(args.file)  # before anything heavy: a missing file is answered at once
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1

    from tqdm import tqdm

    from pipeline.config import PipelineConfig
    from pipeline.output import TEXT_COLUMNS, TextRow, open_output, write_rows_csv
    from pipeline.text_scoring import TextScorer, language_refusal

    config = PipelineConfig().with_overrides(weights_dir=args.weights)
    where = "stdin" if str(args.file) == "-" else str(args.file)
    refused = forced = windowed = lines = 0
    try:
        size = os.fstat(source.fileno()).st_size if str(args.file) != "-" else 0
    except OSError:
        size = 0
    # bytes read, against the file's size; on a terminal only
    bar = tqdm(total=size or None, unit="B", unit_scale=True, desc="lines", file=sys.stderr, leave=False,
               disable=None if not args.quiet else True)
    try:
        with source, TextScorer.load(config) as scorer, (
                open_output(args.out) if args.out is not None else contextlib.nullcontext(sys.stdout)) as out:
            header_written = False
            for batch in _batches(_numbered_lines(source, args.file, bar.update), TEXT_BATCH_LINES):
                results = scorer.score_checked([line for _, line in batch], language=args.language)
                rows = []
                for (n, line), r in zip(batch, results):
                    lines += 1
                    windowed += int(r.windows > 1)
                    if r.sentiment is None:
                        refused += 1
                        if refused <= TEXT_REFUSALS_LISTED:
                            log.error("%s; not scored (--language en scores it anyway)",
                                      language_refusal(f"{where}:{n}", r.language, r.evidence))
                    elif r.language != ENGLISH:
                        forced += 1
                    rows.append(TextRow(n, line, r.sentiment, r.polarity, r.language))
                if header_written:
                    write_rows_csv(rows, (), out, config.output, header=False)
                else:
                    write_rows_csv(rows, TEXT_COLUMNS, out, config.output)
                    header_written = True
                out.flush()
            if not header_written:
                write_rows_csv([], TEXT_COLUMNS, out, config.output)
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1
    finally:
        bar.close()
    if windowed:
        log.info("%s longer than the encoder's window scored over overlapping windows, pooled",
                 _count(windowed, "line"))
    if forced:
        log.warning("%s of %d %s like another language; scored as English (--language en)",
                    _count(forced, "line"), lines, "looks" if forced == 1 else "look")
    if refused:
        log.error("%s of %d not scored: %s like another language (empty sentiment; --language en scores %s "
                  "anyway)", _count(refused, "line"), lines, "it looks" if refused == 1 else "they look",
                  "it" if refused == 1 else "them")
        return 1
    return 0


def extract_command(args: argparse.Namespace) -> int:
    from pipeline.config import PipelineConfig
    from pipeline.extract import ExtractOptions, extract_dataset

    config = PipelineConfig().with_overrides(asr_model=args.asr, fps=args.fps)
    try:
        summary = extract_dataset(args.dataset, args.out, config, ExtractOptions(workers=args.workers))
    except USER_ERRORS as e:
        log.error("%s", e)
        return 1
    log.info("%d extracted, %d already there, %d failed; manifest %s", summary.extracted, summary.skipped,
             len(summary.failures), summary.manifest)
    return 1 if summary.failures else 0


def main(argv: Sequence[str] | None = None, *, models: Models | None = None) -> int:
    """Run one command; returns the exit code.

    Args:
        argv: The arguments; None (the program's entry, ``python -m pipeline`` and ``miar``) reads
            ``sys.argv[1:]`` and readies the process to exit (``_spare_the_teardown``).
        models: For ``run``: models already loaded with the default configuration, used and
            left open (a caller that runs many commands in one process); None loads them.
    """
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    commands: dict[str, Callable[[], int]] = {
        "run": lambda: run_command(args, models), "text": lambda: text_command(args),
        "report": lambda: report_command(args), "extract": lambda: extract_command(args),
    }
    with _stop_signals_interrupt():
        try:
            code = commands[args.command]()
        except KeyboardInterrupt:  # run logs its own (with the count done); files are written atomically
            log.error("%s; finished files are kept, none is half-written", _interruption())
            code = _interrupted_exit()
    if argv is None:  # the program's entry (``python -m pipeline``, ``miar``): the process ends next
        _spare_the_teardown()
    return code


def _spare_the_teardown() -> None:
    """Move every object into the garbage collector's permanent generation before the process exits.

    The interpreter collects garbage several times while it shuts down, each time walking every
    object that PyTorch, transformers and the models created (millions): about a second of a 2-core
    machine after the last output was written (``bench/cold_start.py``). Frozen objects are skipped;
    they are still released with the process. Only for a process about to end: in a longer-lived one,
    frozen objects that later become cyclic garbage would never be collected.
    """
    gc.freeze()
