"""The health page's chart of memories by state over time: a small SVG drawn on the server
(no script, no inline style: its colours are classes of ``app.css``). On a compacted log a
dashed line marks the compaction's horizon and a sentence says what was compacted before it."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup

from memlane.daemon.domain.state_history import STATES, Counts, Horizon

WIDTH, HEIGHT, PAD = 640, 180, 34


def state_chart(series: list[tuple[datetime, Counts]], compacted: Horizon | None = None
                ) -> Markup:
    """One line per state over the sampled instants (evenly spaced in time); an empty history
    draws nothing."""
    if not series:
        return Markup('<p id="states-chart">No memory yet.</p>')
    return _lines(series, compacted) + _compacted_note(compacted)


def _lines(series: list[tuple[datetime, Counts]], compacted: Horizon | None) -> Markup:
    top = max(1, *(max(counts) for _, counts in series))
    xs = [PAD + (WIDTH - 2 * PAD) * i / max(len(series) - 1, 1) for i in range(len(series))]

    def y(count: int) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * count / top

    lines = [Markup('<polyline class="line-{}" data-state="{}" data-last="{}" points="{}"/>').format(
        state, state, series[-1][1][i],
        " ".join(f"{x:.1f},{y(counts[i]):.1f}" for x, (_, counts) in zip(xs, series)))
        for i, state in enumerate(STATES)]
    legend = [Markup('<text class="line-{0}" x="{1}" y="14">{0} {2}</text>').format(
        state, PAD + 130 * i, series[-1][1][i]) for i, state in enumerate(STATES)]
    axis = Markup(
        '<text x="{0}" y="{1}">{2}</text><text x="{3}" y="{1}" text-anchor="end">{4}</text>'
        '<text x="2" y="{5}">{6}</text><line class="axis" x1="{0}" y1="{7}" x2="{3}" y2="{7}"/>'
    ).format(PAD, HEIGHT - 8, series[0][0].strftime("%Y-%m-%d %H:%M:%S"), WIDTH - PAD,
             series[-1][0].strftime("%Y-%m-%d %H:%M:%S"), PAD, top, HEIGHT - PAD)
    return Markup('<svg id="states-chart" class="chart" viewBox="0 0 {} {}" role="img" '
                  'aria-label="memories by state over time">{}{}{}{}</svg>').format(
        WIDTH, HEIGHT, _horizon_line(series, compacted), Markup("").join(lines),
        Markup("").join(legend), axis)


def _horizon_line(series: list[tuple[datetime, Counts]], compacted: Horizon | None) -> Markup:
    start, end = series[0][0], series[-1][0]
    if compacted is None or not start <= compacted.at <= end:
        return Markup("")
    share = (compacted.at - start) / (end - start) if end > start else 1.0
    x = PAD + (WIDTH - 2 * PAD) * share
    return Markup('<line class="horizon" x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}"/>'
                  '<text class="horizon" x="{3:.1f}" y="{4}" text-anchor="end">compacted</text>'
                  ).format(x, PAD - 6, HEIGHT - PAD, x - 3, PAD + 4)


def _compacted_note(compacted: Horizon | None) -> Markup:
    if compacted is None:
        return Markup("")
    return Markup(
        '<p id="states-compacted" class="meta">The log before {} (up to seq {}) is '
        "compacted: recalls and what hooks showed are kept there only as counts, and vectors "
        "no replay uses are gone. Every change of state is kept whole, so the counts left of "
        "the dashed line are as exact as those right of it.</p>").format(
        compacted.at.strftime("%Y-%m-%d %H:%M"), compacted.seq)
