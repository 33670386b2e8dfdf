"""Latency histograms as Prometheus keeps them: fixed bucket bounds, counts, a sum.

One type serves both what is observed (bucket increases over a window) and what the service
model learns (a distribution over the same bounds): quantiles, the share within a target and the
survival function all interpolate linearly inside a bucket, as PromQL's histogram_quantile does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class MalformedHistogram(ValueError):
    """Bucket data that no histogram could have produced (NaN, decreasing counts, no +Inf)."""


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket: `counts[i]` observations in (bounds[i-1], bounds[i]], the last entry
    those above the last finite bound (the +Inf bucket). Bounds are in seconds."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]
    sum: float = 0.0

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise MalformedHistogram(
                f"{len(self.counts)} counts for {len(self.bounds)} finite bounds (want one more)"
            )
        if not all(math.isfinite(b) for b in self.bounds) or any(
            later <= earlier for earlier, later in zip(self.bounds, self.bounds[1:], strict=False)
        ):
            raise MalformedHistogram(f"bucket bounds are not finite and increasing: {self.bounds}")
        if self.bounds and self.bounds[0] < 0:
            raise MalformedHistogram(f"negative bucket bound {self.bounds[0]} for a latency")
        if not all(math.isfinite(c) and c >= 0 for c in self.counts) or not math.isfinite(self.sum):
            raise MalformedHistogram("bucket counts must be finite and >= 0")

    # --- building -------------------------------------------------------------------------

    @classmethod
    def from_cumulative(
        cls, buckets: Iterable[tuple[float, float]], total_sum: float = 0.0
    ) -> Histogram:
        """From Prometheus `_bucket` values: (le, cumulative count), +Inf included, any order.

        Counter resets inside a window can make increases slightly non-monotone (rate()
        extrapolation); dips below 0.5 % of the total are clamped, larger ones are refused."""
        pairs = sorted(buckets)
        if not pairs or not math.isinf(pairs[-1][0]):
            raise MalformedHistogram("no +Inf bucket")
        if any(math.isnan(le) or math.isnan(count) for le, count in pairs):
            raise MalformedHistogram("NaN in bucket bounds or counts")
        total = pairs[-1][1]
        counts: list[float] = []
        previous = 0.0
        for _, cumulative in pairs:
            step = cumulative - previous
            if step < 0:
                if -step > 0.005 * max(total, 1.0):
                    raise MalformedHistogram("cumulative bucket counts decrease")
                step = 0.0
            counts.append(step)
            previous = max(previous, cumulative)
        return cls(tuple(le for le, _ in pairs[:-1]), tuple(counts), total_sum)

    @classmethod
    def from_samples(cls, samples: Iterable[float], bounds: Sequence[float]) -> Histogram:
        """The histogram a Prometheus client would have recorded for these observations."""
        counts = [0.0] * (len(bounds) + 1)
        total = 0.0
        for value in samples:
            total += value
            counts[_bucket_index(bounds, value)] += 1
        return cls(tuple(bounds), tuple(counts), total)

    def merged(self, other: Histogram, weight: float = 1.0) -> Histogram:
        """This histogram plus `weight` times another with the same bounds."""
        if other.bounds != self.bounds:
            raise MalformedHistogram("cannot merge histograms with different bucket bounds")
        return Histogram(
            self.bounds,
            tuple(a + weight * b for a, b in zip(self.counts, other.counts, strict=True)),
            self.sum + weight * other.sum,
        )

    def scaled(self, factor: float) -> Histogram:
        return Histogram(self.bounds, tuple(c * factor for c in self.counts), self.sum * factor)

    def normalized(self) -> Histogram:
        """The same shape with counts summing to 1 (a distribution)."""
        total = self.total
        return self if total <= 0 else self.scaled(1.0 / total)

    # --- reading --------------------------------------------------------------------------

    @property
    def total(self) -> float:
        return math.fsum(self.counts)

    def lower(self, index: int) -> float:
        return 0.0 if index == 0 else self.bounds[index - 1]

    def upper(self, index: int) -> float:
        """Upper bound of bucket `index`; the +Inf bucket is read as ending at its lower bound
        (nothing is known above the last finite bound, as histogram_quantile assumes)."""
        return self.bounds[index] if index < len(self.bounds) else self.lower(index)

    def mean(self) -> float:
        """Mean from `sum` when present, else from bucket midpoints."""
        total = self.total
        if total <= 0:
            return 0.0
        if self.sum > 0:
            return self.sum / total
        return self._midpoint_moment(1) / total

    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean²) from bucket midpoints, with
        the mean from `sum` when present. Coarse buckets blur it; callers clamp it."""
        total = self.total
        mean = self.mean()
        if total <= 0 or mean <= 0:
            return 1.0
        second = self._midpoint_moment(2) / total
        # Uniform spread inside each bucket adds width²/12 per observation.
        spread = (
            math.fsum(
                c * (self.upper(i) - self.lower(i)) ** 2 / 12 for i, c in enumerate(self.counts)
            )
            / total
        )
        return max(0.0, (second + spread - mean * mean) / (mean * mean))

    def _midpoint_moment(self, power: int) -> float:
        return math.fsum(
            c * ((self.lower(i) + self.upper(i)) / 2) ** power for i, c in enumerate(self.counts)
        )

    def cdf(self, value: float) -> float:
        """Share of observations <= value (linear inside a bucket; the +Inf bucket is above
        every finite value)."""
        total = self.total
        if total <= 0:
            return 1.0
        if value < 0:
            return 0.0
        below = 0.0
        for index, count in enumerate(self.counts):
            if index == len(self.bounds):
                break  # the +Inf bucket: above any value we can name
            low, high = self.lower(index), self.upper(index)
            if value >= high:
                below += count
                continue
            if high > low:
                below += count * (value - low) / (high - low)
            break
        return min(1.0, below / total)

    def survival(self, value: float) -> float:
        return 1.0 - self.cdf(value)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 < q < 1), as PromQL's histogram_quantile computes it: inside the
        +Inf bucket it answers the last finite bound, a floor on the truth."""
        total = self.total
        if total <= 0:
            return math.nan
        rank = q * total
        seen = 0.0
        for index, count in enumerate(self.counts):
            if seen + count >= rank and count > 0:
                if index == len(self.bounds):
                    return self.lower(index)
                low, high = self.lower(index), self.upper(index)
                return low + (high - low) * (rank - seen) / count
            seen += count
        return self.lower(len(self.bounds))

    def quantile_in_inf_bucket(self, q: float) -> bool:
        """Whether the q-quantile lies above the last finite bound (its value is then a floor)."""
        total = self.total
        return total > 0 and self.counts[-1] > (1 - q) * total


def _bucket_index(bounds: Sequence[float], value: float) -> int:
    low, high = 0, len(bounds)
    while low < high:
        middle = (low + high) // 2
        if value <= bounds[middle]:
            high = middle
        else:
            low = middle + 1
    return low


# vLLM's buckets for time-to-first-token and inter-token latency (seconds), used by the
# benchmark and the e2e load simulator so both record what a real server would.
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
