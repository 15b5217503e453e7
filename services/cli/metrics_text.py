"""Reading numbers out of a Prometheus /metrics page (pure).

Counters are exposed as `<name>_total`; a query by the family name or the sample name both work.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Samples = list[tuple[str, dict[str, str], float]]


def parse_samples(text: str) -> Samples:
    """(sample name, labels, value) for every sample of a /metrics page; unparsable text -> []."""
    try:
        return [
            (sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]
    except (ValueError, TypeError):
        return []


def metric_sum(
    samples: Samples, name: str, labels: Mapping[str, str] | None = None
) -> float | None:
    """The sum of the samples called `name` (or `name_total`) whose labels include `labels`;
    None when no sample matches (the metric is not exported yet)."""
    wanted = labels or {}
    found = [
        value
        for sample, sample_labels, value in samples
        if sample in (name, f"{name}_total")
        and all(sample_labels.get(k) == v for k, v in wanted.items())
    ]
    return sum(found) if found else None


def label_values(samples: Samples, name: str, label: str) -> dict[str, float]:
    """label value -> summed value for the samples called `name` (or `name_total`)."""
    out: dict[str, float] = {}
    for sample, sample_labels, value in samples:
        if sample in (name, f"{name}_total") and label in sample_labels:
            key = sample_labels[label]
            out[key] = out.get(key, 0.0) + value
    return out
