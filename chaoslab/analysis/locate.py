"""Locating instants to the request: *when*, around a change the windows found, a signal changed.

Windows decide *whether* a signal is degraded or healthy (design.md §2); this module finds
*when* it turned, from the signal's sub-window bins (:mod:`chaoslab.bins`, ≈ 10 ms each). An
outcome is **bad** when it failed or its latency is above the band's p95 limit — exactly the
outcomes that push a window out of its band. Around a change that the windows located (the
degraded window that followed a healthy one, or the healthy window that followed a degraded
one), the instant is the **maximum-likelihood change point** of the share of bad outcomes: the
split of the outcomes in the two windows around the change into a before part and an after
part that makes "a constant share of bad outcomes on each side" most likely, with the after
side worse (onset) or better (end, recovery). For a clean step it is exact to the bin; a bad
outcome now and then on either side hardly moves it (one outlier weighs what it is worth next
to the hundreds of outcomes around it).

The instant is the start of the bin of the **first outcome of the new state**: the first bad
request of a degradation, the first good request after one (empty bins between the last
outcome of the old state and the first of the new are attributed to the old state). Probe
results are sparse, so a probe's recovery is placed right after its last failed result instead
— it cannot have recovered earlier, and the load, sampled every few milliseconds, pins the
moment. Without bins (journals written before bins were kept, or a span outside them) the
instants fall back to window edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaoslab.analysis.model import Band
from chaoslab.bins import BinSeries

EPS = 1e-9
TIE = 1e-9
"""Log-likelihoods this close are equal (splits across empty bins give the same likelihood)."""


def bad_limit_us(band: Band) -> int | None:
    """The latency above which an outcome is bad (µs, the band's p95 limit), None when latency is not judged."""
    return None if band.p95_max_ms is None else round(band.p95_max_ms * 1000.0)


@dataclass(frozen=True, slots=True)
class Cells:
    """Per bin over a span of one signal: completed attempts and bad outcomes among them."""

    first: int
    """Bin index of the first cell."""
    bin_s: float
    counts: tuple[int, ...]
    bads: tuple[int, ...]

    def start_s(self, offset: int) -> float:
        """Run time at which cell ``offset`` begins."""
        return (self.first + offset) * self.bin_s


def cells_of(bins: BinSeries, band: Band, start_s: float, end_s: float) -> Cells:
    """The cells of the bins that start in ``[start_s, end_s)``."""
    b = bins.bin_s
    first = max(0, math.ceil(start_s / b - 1e-6))
    stop = max(first, math.ceil(end_s / b - 1e-6))
    limit = bad_limit_us(band)
    counts: list[int] = []
    bads: list[int] = []
    for item in bins.span(first, stop):
        if item is None:
            counts.append(0)
            bads.append(0)
            continue
        over = item.hist.count_above(limit) if limit is not None else 0
        counts.append(item.count)
        # a slow failure is one bad outcome, not two
        bads.append(min(item.count, item.errors + over))
    return Cells(first, b, tuple(counts), tuple(bads))


def _loglik(bad: int, n: int) -> float:
    """Log-likelihood of ``bad`` of ``n`` outcomes at their own share (0 for an empty or pure side)."""
    if n == 0 or bad == 0 or bad == n:
        return 0.0
    p = bad / n
    return bad * math.log(p) + (n - bad) * math.log1p(-p)


def change_point(cells: Cells, *, worse_after: bool, latest: bool = True) -> int | None:
    """The offset (0 … len) of the most likely single change in the share of bad outcomes, or None.

    ``worse_after``: the share after the split must be higher (an onset); else lower (an end or
    a recovery). Among equally likely splits (they differ only by empty bins) ``latest`` takes the
    last, at the first outcome of the new state; else the first, right after the old state's
    last outcome. None when no split has both sides non-empty and the change in that direction.
    """
    counts, bads = cells.counts, cells.bads
    total_n, total_b = sum(counts), sum(bads)
    best: float | None = None
    best_at: int | None = None
    n1 = b1 = 0
    for s in range(len(counts) + 1):
        if s > 0:
            n1 += counts[s - 1]
            b1 += bads[s - 1]
        n2, b2 = total_n - n1, total_b - b1
        if n1 == 0 or n2 == 0:
            continue
        # compare shares without dividing: b2/n2 > b1/n1
        if (b2 * n1 > b1 * n2) != worse_after or b2 * n1 == b1 * n2:
            continue
        ll = _loglik(b1, n1) + _loglik(b2, n2)
        if best is None or ll > best + TIE:
            best, best_at = ll, s
        elif latest and ll >= best - TIE:
            best_at = s
    return best_at


@dataclass(frozen=True, slots=True)
class Locator:
    """Locates one signal's changes around given windows, from its bins (window edges without them)."""

    bins: BinSeries | None
    band: Band
    window_s: float
    probe: bool = False

    def _cells(self, start_s: float, end_s: float) -> Cells | None:
        if self.bins is None:
            return None
        cells = cells_of(self.bins, self.band, start_s, end_s)
        return cells if sum(cells.counts) else None

    def onset_s(self, window: int) -> float:
        """When the degradation first seen in ``window`` (the one before it was not degraded) began."""
        w = self.window_s
        cells = self._cells((window - 1) * w, (window + 1) * w)
        at = None if cells is None else change_point(cells, worse_after=True)
        return window * w if at is None or cells is None else cells.start_s(at)

    def end_s(self, window: int) -> float:
        """When the degradation last seen in ``window`` (the one after it was not degraded) ended."""
        w = self.window_s
        cells = self._cells(window * w, (window + 2) * w)
        at = None if cells is None else change_point(cells, worse_after=False)
        return (window + 1) * w if at is None or cells is None else cells.start_s(at)

    def recovered_s(self, window: int, not_before_s: float) -> float:
        """When the signal, unhealthy in the window before ``window`` and healthy in it, recovered.

        Never before ``not_before_s`` (the removal): a change located earlier — the fault's own
        bad outcomes ending as it came off — counts as recovered at the removal.
        """
        w = self.window_s
        cells = self._cells((window - 1) * w, (window + 1) * w)
        at = None if cells is None else change_point(cells, worse_after=False, latest=not self.probe)
        located = window * w if at is None or cells is None else cells.start_s(at)
        return max(not_before_s, located)
