"""Human-readable reports: a sentiment-over-time plot and a self-contained HTML page per video.

``<out>/<stem>.png``: one bar per utterance spanning its start..end, height = fused score
on the MOSI scale [-3, 3], coloured by polarity, numbered as in the CSV, with a small
marker on each bar for what the text, the voice and the face say alone (the CSV's
``text_score``, ``voice_score``, ``face_score``; none where the modality was absent), and
the utterances' text beneath. ``<out>/<stem>.html``: that plot (embedded as a data URI),
the utterance table, a per-modality signals summary and what made the scores. The
page loads nothing from anywhere (no scripts, no external URLs), so it can be mailed
or archived on its own. Both files are written atomically.

A report is drawn from ``ReportData``, whose rows are the very ``UtteranceRow`` records
the CSV/JSONL writers write, built either from a fresh ``VideoResult`` (``run --report``)
or parsed back from a CSV/JSONL already written (``report OUT_DIR``), so the two routes
draw the same thing. Light at import: matplotlib is imported when a plot is drawn.

Bounded in the input's size: at most ``MAX_ROWS_DRAWN`` utterances are drawn and listed
(the rest are counted and summarised in ``RowStats``, computed over every row), an
utterance's text is cut to ``MAX_TEXT_CHARS_SHOWN`` characters in the picture and the page,
and ``report OUT_DIR`` reads each CSV/JSONL row by row (``pipeline.output.iter_output_rows``),
skipping with a warning a file it cannot read, and never opening a FIFO or a device.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from extractors.errors import ExtractionError
from model.schema import MODALITIES, NEUTRAL_BAND, SCORE_MAX, SCORE_MIN, polarity_of
from pipeline.errors import PipelineError
from pipeline.output import SUMMARY_NAME, SummaryRow, UtteranceRow, iter_output_rows, open_output, read_summary

if TYPE_CHECKING:
    from pipeline.config import OutputOptions
    from pipeline.records import VideoResult

__all__ = ["ReportData", "RowStats", "MAX_ROWS_DRAWN", "MAX_TEXT_CHARS_SHOWN", "report_data_from_result",
           "report_data_from_rows", "render_png", "render_html", "report_paths", "write_report", "rebuild_reports",
           "POLARITY_COLOURS", "READING_MARKERS"]

log = logging.getLogger(__name__)

#: Bar colour per polarity (colour-blind safe pair for positive/negative, grey for neutral).
POLARITY_COLOURS: Mapping[str, str] = {"positive": "#1b7837", "neutral": "#8c8c8c", "negative": "#b2182b"}
#: Utterances whose text is drawn under the plot; the rest are in the HTML table and the CSV.
MAX_TEXT_LINES_IN_PNG = 40
#: Characters per wrapped line of utterance text under the plot.
TEXT_WRAP_CHARS = 120
#: Utterances drawn as bars and listed in the HTML table; the rest are counted (and in the CSV).
MAX_ROWS_DRAWN = 500
#: Characters of an utterance's text shown in the picture and the page (the CSV has all of it).
MAX_TEXT_CHARS_SHOWN = 300
#: Row fields averaged (duration-weighted) in the signals summary.
_MEAN_FIELDS: tuple[str, ...] = ("asr_word_prob", "text_score", "voice_score", "voiced_share", "f0_mean_hz",
                                 "loudness_db", "face_score", "face_coverage", "smile", "brow_down")
#: The per-modality readings marked on each bar: (row field, legend label, matplotlib marker).
READING_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("text_score", "text alone", "o"), ("voice_score", "voice alone", "^"), ("face_score", "face alone", "s"),
)
_SCORE_LIMIT = SCORE_MAX


@dataclass(frozen=True)
class RowStats:
    """Totals over every utterance of a file, drawn or not (computed in one pass, flat in memory).

    Attributes:
        n_rows: Utterances.
        n_words: Words over all utterances.
        speech_s: Seconds covered by utterances.
        end_s: End of the last utterance.
        means: Duration-weighted mean of each ``_MEAN_FIELDS`` field over the utterances where it
            is present (None where it is absent from all).
    """

    n_rows: int = 0
    n_words: int = 0
    speech_s: float = 0.0
    end_s: float = 0.0
    means: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[UtteranceRow]) -> RowStats:
        n_rows = n_words = 0
        speech_s = end_s = 0.0
        sums = {name: [0.0, 0.0] for name in _MEAN_FIELDS}
        for r in rows:
            n_rows += 1
            n_words += r.n_words
            speech_s += max(r.end_s - r.start_s, 0.0)
            end_s = max(end_s, r.end_s)
            weight = max(r.end_s - r.start_s, 0.1)
            for name, acc in sums.items():
                value = getattr(r, name)
                if value is not None:
                    acc[0] += value * weight
                    acc[1] += weight
        return cls(n_rows, n_words, speech_s, end_s, {k: (v / w if w else None) for k, (v, w) in sums.items()})


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows.

    Attributes:
        stem: File stem of the outputs (``<stem>.png``, ``<stem>.html``).
        video: The input's name.
        rows: The utterances drawn, in time order, as written to the CSV/JSONL: the first
            ``MAX_ROWS_DRAWN`` of them.
        duration_s: Media duration (None when unknown; the plot then ends at the last utterance).
        metadata: (label, value) pairs shown in the "Video" table, in order.
        face_coverage: Face coverage over the whole file (None when unknown).
        warnings: Notes from the run.
        neutral_band: Scores with ``abs(score) < neutral_band`` are neutral (shaded in the plot).
        stats: Totals over every utterance of the file (default: over ``rows``).
    """

    stem: str
    video: str
    rows: tuple[UtteranceRow, ...]
    duration_s: float | None
    metadata: tuple[tuple[str, str], ...]
    face_coverage: float | None = None
    warnings: tuple[str, ...] = ()
    neutral_band: float = NEUTRAL_BAND
    stats: RowStats | None = None

    def __post_init__(self) -> None:
        if self.stats is None:
            object.__setattr__(self, "stats", RowStats.of(self.rows))

    @property
    def totals(self) -> RowStats:
        assert self.stats is not None  # set in __post_init__
        return self.stats

    @property
    def more_rows(self) -> int:
        """Utterances of the file not drawn (beyond ``MAX_ROWS_DRAWN``)."""
        return max(self.totals.n_rows - len(self.rows), 0)


def report_data_from_result(result: VideoResult, options: OutputOptions) -> ReportData:
    """Report content of a fresh result, with its full metadata."""
    media = result.media
    rows = tuple(UtteranceRow.of(result, u, options) for u in result.utterances)
    stats = RowStats.of(rows)
    mean = result.mean_sentiment
    metadata = [
        ("file", str(media.path)),
        ("status", result.status),
        ("duration", f"{media.duration_s:.2f} s"),
        ("frame size", f"{media.width}x{media.height} px" if media.width and media.height else "no video"),
        ("frame rate", f"{media.fps:g} fps" if media.fps else "n/a"),
        ("codecs", " / ".join(c for c in (media.video_codec, media.audio_codec) if c) or "n/a"),
        ("language", _language(result)),
        ("ASR model", result.asr_model),
        ("weights", result.weights),
        ("modalities used", ", ".join(result.modalities_used) or "none (nothing was scored)"),
        ("utterances", str(len(rows))),
        ("mean sentiment",
         "n/a" if mean is None else f"{mean:+.{options.float_digits}f} ({polarity_of(mean, options.neutral_band)})"),
        ("processing time", f"{sum(result.stage_seconds.values()):.1f} s"),
    ]
    return ReportData(media.path.stem, media.path.name, rows[:MAX_ROWS_DRAWN], media.duration_s or None,
                      tuple(metadata), result.face_coverage, tuple(result.warnings), options.neutral_band, stats)


def _language(result: VideoResult) -> str:
    if not result.language:
        return "none (no speech)"
    if result.language_probability is None:
        return result.language
    return f"{result.language} (p={result.language_probability:.2f})"


def report_data_from_rows(stem: str, rows: Iterable[Mapping[str, object] | UtteranceRow],
                          metadata: Sequence[tuple[str, str]] = (), duration_s: float | None = None,
                          face_coverage: float | None = None, neutral_band: float = NEUTRAL_BAND) -> ReportData:
    """Report content from rows read back from ``<stem>.csv`` or ``<stem>.jsonl`` (parsed or not).

    Read in one pass: the first ``MAX_ROWS_DRAWN`` rows are kept, every row counts in the totals.

    Raises:
        PipelineError: A row lacks a column of the CSV schema, holds a non-number where a number
            goes, or a number that is not finite.
    """
    drawn: list[UtteranceRow] = []

    def parsed() -> Iterable[UtteranceRow]:
        for n, row in enumerate(rows):
            try:
                got = row if isinstance(row, UtteranceRow) else UtteranceRow.parse(row)
            except (KeyError, TypeError, ValueError) as e:
                raise PipelineError(f"{stem}: row {n + 1} is not a pipeline output row ({e!r})") from e
            if not _finite(got):
                raise PipelineError(f"{stem}: row {n + 1} holds a number that is not finite")
            if len(drawn) < MAX_ROWS_DRAWN:
                drawn.append(got)
            yield got

    stats = RowStats.of(parsed())
    video = drawn[0].video if drawn else stem
    return ReportData(stem, video, tuple(drawn), _finite_or_none(duration_s), tuple(metadata),
                      _finite_or_none(face_coverage), neutral_band=neutral_band, stats=stats)


def _finite(row: UtteranceRow) -> bool:
    """Every number of ``row`` is finite (a hand-edited ``inf`` or ``nan`` cannot be drawn)."""
    return all(not isinstance(v, float) or math.isfinite(v) for v in (getattr(row, f.name) for f in fields(row)))


#: Row fields on the sentiment scale, and row fields that are shares (0..1): what the pipeline writes.
_SCORE_FIELDS: tuple[str, ...] = ("sentiment", "text_score", "voice_score", "face_score")
_SHARE_FIELDS: tuple[str, ...] = ("face_coverage", "asr_word_prob", "voiced_share", "smile", "brow_down")


def _out_of_range(row: UtteranceRow) -> str:
    """Why ``row`` holds a value the pipeline never writes ("" when it holds none): a score outside
    [-3, 3], a share outside [0, 1], a negative time or word count, a start after its end, a polarity
    that is not one. Such a row was edited by hand (or is not ours) and is not drawn."""
    for name in _SCORE_FIELDS:
        value = getattr(row, name)
        if value is not None and not SCORE_MIN <= value <= SCORE_MAX:
            return f"{name} {value:g} is outside [{SCORE_MIN:g}, {SCORE_MAX:g}]"
    for name in _SHARE_FIELDS:
        value = getattr(row, name)
        if value is not None and not 0.0 <= value <= 1.0:
            return f"{name} {value:g} is outside [0, 1]"
    if row.start_s < 0 or row.start_s > row.end_s:
        return f"start_s {row.start_s:g} is {'negative' if row.start_s < 0 else f'after end_s {row.end_s:g}'}"
    if row.n_words < 0 or row.utterance < 0:
        return "a negative count"
    if row.polarity not in POLARITY_COLOURS:
        return f"polarity {row.polarity[:20]!r} is not one of {', '.join(POLARITY_COLOURS)}"
    return ""


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _cut(text: str, limit: int = MAX_TEXT_CHARS_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


#: How a reading's marker looks: dark with a white rim, so it shows on every bar colour and on white.
_MARKER_STYLE = {"markersize": 7, "linestyle": "none", "markerfacecolor": "#222222", "markeredgecolor": "white",
                 "markeredgewidth": 0.8, "zorder": 4}


def _plot_end_s(data: ReportData) -> float:
    last = max((r.end_s for r in data.rows), default=0.0)
    if data.more_rows:  # only the first utterances are drawn: the axis ends with them
        return max(last, 1.0)
    return max(data.duration_s or 0.0, last, 1.0)


def _signed(value: float | None, digits: int = 2, missing: str = "-") -> str:
    return missing if value is None else f"{value:+.{digits}f}"


def render_png(data: ReportData) -> bytes:
    """The plot as PNG bytes: bars over time on top, the utterances' text beneath.

    Each bar is the fused score; on it, one marker per modality reading (text, voice, face
    alone, ``READING_MARKERS``), left to right inside the bar, none for an absent modality.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global
    state), so it is safe in worker processes and threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    shown = data.rows[:MAX_TEXT_LINES_IN_PNG]
    header = f"{'#':>3}  {'start-end (s)':<15} {'fused':>6} {'text':>6} {'voice':>6} {'face':>6}  words"
    lines: list[tuple[str, str]] = [(header, "#444444")]
    for r in shown:
        span = f"{r.start_s:.1f}-{r.end_s:.1f}"
        readings = " ".join(f"{_signed(getattr(r, name)):>6}" for name, _, _ in READING_MARKERS)
        wrapped = textwrap.wrap(f"{r.utterance:>3}  {span:<15} {r.sentiment:+6.2f} {readings}  {_cut(r.text)}",
                                TEXT_WRAP_CHARS, subsequent_indent=" " * 50) or [""]
        lines.extend((w, POLARITY_COLOURS.get(r.polarity, "black")) for w in wrapped)
    more = data.totals.n_rows - len(shown)
    if more > 0:
        where = "the HTML table or the CSV" if not data.more_rows else "the CSV"
        lines.append((f"... and {more:,} more utterance{'' if more == 1 else 's'} (see {where})", "black"))
    if not data.rows:
        lines = []
        lines.append(("no speech recognised: nothing was scored", "black"))

    plot_in, line_in = 3.4, 0.19
    text_in = 0.25 + line_in * len(lines)
    fig = Figure(figsize=(11, plot_in + text_in), dpi=100)
    FigureCanvasAgg(fig)
    top = text_in / (plot_in + text_in)
    ax = fig.add_axes((0.07, top + 0.55 / (plot_in + text_in), 0.91, (plot_in - 0.95) / (plot_in + text_in)))
    end_s = _plot_end_s(data)
    ax.axhspan(-data.neutral_band, data.neutral_band, color="#eeeeee", zorder=0)
    ax.axhline(0.0, color="#555555", linewidth=0.8, zorder=1)
    for r in data.rows:
        height = max(min(r.sentiment, _SCORE_LIMIT), -_SCORE_LIMIT)
        colour = POLARITY_COLOURS.get(r.polarity, "black")
        width = max(r.end_s - r.start_s, end_s / 400)
        ax.bar(r.start_s, height, width=width, align="edge", color=colour, alpha=0.85, edgecolor=colour, zorder=2)
        for k, (name, _, marker) in enumerate(READING_MARKERS):
            value = getattr(r, name)
            if value is not None:
                ax.plot(r.start_s + width * (k + 1) / (len(READING_MARKERS) + 1),
                        max(min(value, _SCORE_LIMIT), -_SCORE_LIMIT), marker=marker, **_MARKER_STYLE)
        # the number along the top edge, like a column label: beside the bar it would hide a reading's marker
        ax.text(r.start_s + width / 2, 0.985, str(r.utterance), transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=8, color="#444444", parse_math=False, zorder=3)
    ax.set_xlim(0.0, end_s)
    ax.set_ylim(-_SCORE_LIMIT, _SCORE_LIMIT)
    ax.set_yticks([-3, -2, -1, 0, 1, 2, 3])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("sentiment")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6, zorder=0)
    title = f"{_cut(data.video, 120)}: sentiment per utterance"
    if data.more_rows:
        title += f" (the first {len(data.rows):,} of {data.totals.n_rows:,})"
    ax.set_title(title, fontsize=11, loc="left")
    ax.title.set_parse_math(False)
    handles = [Patch(color=c, label=f"fused: {p}") for p, c in POLARITY_COLOURS.items()]
    handles += [Line2D([], [], marker=marker, label=label, **_MARKER_STYLE) for _, label, marker in READING_MARKERS]
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=len(handles),
              frameon=False, borderaxespad=0.2, handletextpad=0.4, columnspacing=1.0)
    for n, (line, colour) in enumerate(lines):
        y = top - (0.05 + line_in * n) / (plot_in + text_in)
        fig.text(0.02, y, line, fontsize=8.5, family="monospace", color=colour, va="top", parse_math=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _weighted_mean(data: ReportData, attr: str) -> float | None:
    return data.totals.means.get(attr)


def _signals_rows(data: ReportData) -> list[tuple[str, str, str]]:
    """(modality, signal, value) lines of the signals summary, duration-weighted over utterances."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    def num(value: float | None, unit: str, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}{unit}"

    speech_s = data.totals.speech_s
    text, audio, vision = MODALITIES
    return [
        (text, "utterances / words", f"{data.totals.n_rows} / {data.totals.n_words}"),
        (text, "speech covered by utterances", num(speech_s, " s")),
        (text, "mean ASR word probability", num(_weighted_mean(data, "asr_word_prob"), "", 2)),
        (text, "text alone (mean reading)", _signed(_weighted_mean(data, "text_score"), missing="n/a")),
        (audio, "voice alone (mean reading)", _signed(_weighted_mean(data, "voice_score"), missing="n/a")),
        (audio, "voiced share (mean over utterances)", pct(_weighted_mean(data, "voiced_share"))),
        (audio, "mean pitch", num(_weighted_mean(data, "f0_mean_hz"), " Hz")),
        (audio, "mean loudness", num(_weighted_mean(data, "loudness_db"), " dB")),
        (vision, "face alone (mean reading)", _signed(_weighted_mean(data, "face_score"), missing="n/a")),
        (vision, "face coverage (whole file)", pct(data.face_coverage)),
        (vision, "face coverage (mean over utterances)", pct(_weighted_mean(data, "face_coverage"))),
        (vision, "smile / brow down (mean)",
         num(_weighted_mean(data, "smile"), "", 2) + " / " + num(_weighted_mean(data, "brow_down"), "", 2)),
    ]


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1150px;color:#222;padding:0 16px}
h1{font-size:1.4em;margin-bottom:4px}h2{font-size:1.1em;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top}table.utterances{width:100%;font-size:.82em}
table.utterances th,table.utterances td{padding:3px 4px}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.meta th{width:180px}td.text{min-width:200px}img.plot{max-width:100%;height:auto;border:1px solid #eee}
.positive{color:#1b7837;font-weight:600}.negative{color:#b2182b;font-weight:600}.neutral{color:#666}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px;margin:4px 0}
.muted{color:#777;font-size:.85em}
"""


def render_html(data: ReportData, png: bytes) -> str:
    """The self-contained HTML page (every text escaped; the plot inline as a data URI)."""
    e = html.escape
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    meta = "".join(f"<tr><th>{e(k)}</th><td>{e(_cut(v))}</td></tr>" for k, v in data.metadata)
    signals = "".join(f"<tr><td>{e(m)}</td><td>{e(s)}</td><td class=\"num\">{e(v)}</td></tr>"
                      for m, s, v in _signals_rows(data))
    warnings = "".join(f'<div class="warn">{e(w)}</div>' for w in data.warnings)
    head = ("<tr><th>#</th><th>start (s)</th><th>end (s)</th><th>text</th><th>sentiment</th><th>polarity</th>"
            "<th>text alone</th><th>voice alone</th><th>face alone</th>"
            "<th>face coverage</th><th>voiced share</th><th>F0 (Hz)</th><th>loudness (dB)</th><th>smile</th>"
            "<th>brow down</th><th>ASR prob</th></tr>")
    body = []
    for r in data.rows:
        pol = r.polarity if r.polarity in POLARITY_COLOURS else ""
        body.append(
            f'<tr class="utt"><td class="num">{r.utterance}</td><td class="num">{r.start_s:.2f}</td>'
            f'<td class="num">{r.end_s:.2f}</td><td class="text">{e(_cut(r.text))}</td>'
            f'<td class="num {pol}">{r.sentiment:+.3f}</td><td class="{pol}">{e(r.polarity)}</td>'
            + "".join(f'<td class="num">{e(_signed(getattr(r, name), 3, ""))}</td>' for name, _, _ in READING_MARKERS)
            + f'<td class="num">{e(_fmt(r.face_coverage, 2))}</td><td class="num">{e(_fmt(r.voiced_share, 2))}</td>'
            f'<td class="num">{e(_fmt(r.f0_mean_hz, 1))}</td><td class="num">{e(_fmt(r.loudness_db, 1))}</td>'
            f'<td class="num">{e(_fmt(r.smile, 2))}</td><td class="num">{e(_fmt(r.brow_down, 2))}</td>'
            f'<td class="num">{e(_fmt(r.asr_word_prob, 2))}</td></tr>'
        )
    table = (f"<table class=\"utterances\">{head}{''.join(body)}</table>" if body
             else "<p>No speech recognised: nothing was scored.</p>")
    if data.more_rows:
        table += (f"<p>The first {len(data.rows):,} of {data.totals.n_rows:,} utterances are shown; the CSV or "
                  "JSONL has every one. The signals below are over all of them.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(_cut(data.video))}: sentiment report</title><style>{_CSS}</style></head>
<body>
<h1>{e(_cut(data.video))}</h1>
<p class="muted">Per-utterance sentiment on the CMU-MOSI scale: -3 very negative, +3 very positive;
|score| &lt; {data.neutral_band:g} is neutral (grey band).
The numbers along the top are the utterance numbers of the table. The bar is the fused score; the markers on it
(and the columns "text alone", "voice alone", "face alone") are what each modality says on its own (the model
with the other two masked); no marker, empty cell: that modality was not observed in the utterance.</p>
{warnings}
<img class="plot" alt="sentiment per utterance over time" src="{uri}">
<h2>Utterances</h2>
{table}
<h2>Signals</h2>
<table class="signals"><tr><th>modality</th><th>signal</th><th>value</th></tr>{signals}</table>
<h2>Video</h2>
<table class="meta">{meta}</table>
</body></html>
"""


def report_paths(out_dir: Path, stem: str) -> tuple[Path, Path]:
    """The report's files for ``stem``: ``<out_dir>/<stem>.png`` and ``<out_dir>/<stem>.html``."""
    return out_dir / f"{stem}.png", out_dir / f"{stem}.html"


def _write(data: ReportData, out_dir: Path) -> Path:
    png = render_png(data)
    png_path, html_path = report_paths(out_dir, data.stem)
    with open_output(png_path, "wb") as f:
        f.write(png)
    with open_output(html_path) as f:
        f.write(render_html(data, png))
    return html_path


def write_report(result: VideoResult, out_dir: Path, options: OutputOptions, stem: str | None = None) -> Path:
    """Write ``<stem>.png`` and ``<stem>.html`` for ``result`` into ``out_dir``; returns the HTML path.

    Args:
        stem: The stem of the input's per-video output (a batch renames clashing stems,
            ``pipeline.inputs.output_stems``); default the media file's own stem.

    Raises:
        OutputError: The files cannot be written.
    """
    data = report_data_from_result(result, options)
    if stem is not None:
        data = replace(data, stem=stem)
    return _write(data, out_dir)


def _summary_rows(folder: Path) -> tuple[dict[str, SummaryRow], dict[str, SummaryRow]]:
    """The rows of ``folder/summary.csv`` by output file name and by input stem (``read_summary``:
    what cannot be read is left out with a warning; the reports stand without it)."""
    by_output: dict[str, SummaryRow] = {}
    by_stem: dict[str, SummaryRow] = {}
    for row in read_summary(folder / SUMMARY_NAME):
        if row.csv:
            by_output[Path(row.csv).name] = row
        by_stem.setdefault(Path(row.video).stem, row)
    return by_output, by_stem


def _metadata_from_summary(row: SummaryRow | None, n_rows: int) -> tuple[list[tuple[str, str]], float | None]:
    """Metadata a CSV alone cannot tell: from summary.csv, and from the video itself when it is still there."""
    meta: list[tuple[str, str]] = []
    duration = _finite_or_none(row.duration_s) if row else None
    if row:
        language = row.language or ("none (no speech)" if row.status == "no_speech" else "n/a")
        meta += [("file", row.video), ("status", row.status), ("language", language)]
        video = Path(row.video)
        if video.is_file():
            try:
                from extractors.assets import resolve_ffmpeg
                from extractors.media import probe

                media = probe(video, resolve_ffmpeg())
                duration = _finite_or_none(media.duration_s) or duration
                meta += [("frame size", f"{media.width}x{media.height} px" if media.width else "no video"),
                         ("frame rate", f"{media.fps:g} fps" if media.fps else "n/a")]
            except ExtractionError as e:  # metadata is a nicety; the report stands without it
                log.debug("cannot probe %s: %s", video, e)
    meta += [("duration", "n/a" if duration is None else f"{duration:.2f} s"), ("utterances", str(n_rows))]
    if row and row.weights_sha256:
        meta += [("ASR model", row.asr_model), ("weights SHA-256", row.weights_sha256),
                 ("pipeline version", row.version)]
    else:
        meta += [("ASR model, weights", "not recorded in the CSV (use 'run --report' for full metadata)")]
    return meta, duration


def _read_report_data(stem: str, path: Path, summary: SummaryRow | None, neutral_band: float) -> ReportData:
    """One pass over ``path``: the first rows kept, every row counted; bad rows left out with a warning.

    Raises:
        PipelineError: The file as a whole cannot be read as our output.
    """
    bad: list[str] = []

    def good_rows() -> Iterable[UtteranceRow]:
        for line, row, why in iter_output_rows(path):
            if row is not None and not _finite(row):
                row, why = None, "a number that is not finite"
            elif row is not None and (problem := _out_of_range(row)):
                row, why = None, f"{problem}, which the pipeline never writes"
            if row is None:
                bad.append(f"line {line}: {why}")
            else:
                yield row

    data = report_data_from_rows(stem, good_rows(), neutral_band=neutral_band)
    if bad:
        log.warning("%s: %d row%s left out of the report (%s)", path, len(bad), "" if len(bad) == 1 else "s", bad[0])
    meta, duration = _metadata_from_summary(summary, data.totals.n_rows)
    return ReportData(data.stem, data.video, data.rows, duration, tuple(meta),
                      _finite_or_none(summary.face_coverage) if summary else None,
                      neutral_band=neutral_band, stats=data.stats)


def rebuild_reports(folder: Path, options: OutputOptions | None = None,
                    skipped: list[str] | None = None) -> list[Path]:
    """Write ``<stem>.png``/``<stem>.html`` for every per-video CSV (or JSONL) in ``folder``.

    A file that cannot be read as our output (foreign columns, not UTF-8, a FIFO or a device
    named ``*.csv``, an over-long field) is skipped with a warning and the others are drawn.

    Args:
        folder: An output folder of ``python -m pipeline run``.
        options: Output options (default ``PipelineConfig().output``); the neutral band shades the plot.
        skipped: When given, gets one line per file skipped.

    Returns:
        The HTML files written, sorted.

    Raises:
        PipelineError: ``folder`` is not a folder or holds no per-video output.
    """
    if not folder.is_dir():
        raise PipelineError(f"{folder}: no such folder")
    try:
        candidates = sorted(p for p in folder.iterdir()
                            if p.suffix in (".csv", ".jsonl") and p.name != SUMMARY_NAME and not p.name.startswith("."))
    except OSError as e:
        raise PipelineError(f"{folder}: cannot be listed: {e.strerror or e}") from e
    outputs = {p.stem: p for p in candidates if p.suffix == ".jsonl"}
    outputs.update({p.stem: p for p in candidates if p.suffix == ".csv"})
    if not outputs:
        raise PipelineError(f"{folder}: holds no <stem>.csv or <stem>.jsonl written by 'python -m pipeline run'")
    if options is None:
        from pipeline.config import PipelineConfig

        options = PipelineConfig().output
    by_output, by_stem = _summary_rows(folder)
    written = []
    for stem, path in sorted(outputs.items()):
        row = by_output.get(path.name) or by_stem.get(stem)
        try:
            data = _read_report_data(stem, path, row, options.neutral_band)
        except PipelineError as e:
            log.warning("%s; no report for it", e)
            if skipped is not None:
                skipped.append(str(e))
            continue
        written.append(_write(data, folder))
    return written
