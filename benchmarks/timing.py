"""Interleaved timing: every contender runs beside its peers, repeat after repeat.

The machine is shared and noisy (another training run, other processes), so absolute times
drift from minute to minute. Each repeat times a few steps of every contender back to back,
rotating who goes first, and the report keeps the median over repeats: a slow spell hits
all contenders of a repeat alike, and the ratio of medians stays fair.
"""

import statistics
import time


def time_steps(step, steps):
    """Seconds per step of `steps` consecutive calls of `step`."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def warm_up(step, steps):
    """Run the first call (tracing, graph optimisation, oneDNN kernel selection) and
    `steps - 1` more; return (first call seconds, total seconds)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(max(steps - 1, 0)):
        step()
    return first, time.perf_counter() - start


def interleaved(steps_by_label, *, steps, repeats, deadline=None):
    """Time each `label -> step function` for `repeats` rounds of `steps` steps.

    Round r starts with contender r mod n. Stops early (keeping the finished rounds) once
    `time.monotonic()` passes `deadline`. Returns `label -> list of seconds per step`.
    """
    labels = list(steps_by_label)
    samples = {label: [] for label in labels}
    for r in range(repeats):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            samples[label].append(time_steps(steps_by_label[label], steps))
        if deadline is not None and time.monotonic() > deadline:
            break
    return samples


def summarize(seconds_per_step, batch_size):
    """Median step time and images/s, with the spread of the repeats."""
    median = statistics.median(seconds_per_step)
    return {
        "step_seconds_median": median,
        "step_seconds_min": min(seconds_per_step),
        "step_seconds_max": max(seconds_per_step),
        "images_per_second": batch_size / median,
        "repeats": len(seconds_per_step),
        "samples": seconds_per_step,
    }
