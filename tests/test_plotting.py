"""Training curves: what `plotting.plot_runs` draws, read back from the figure it saves."""

import pytest

from keras_resnets import plotting


def _rows(accuracies, seconds_per_epoch):
    return [
        {
            "epoch": i,
            "accuracy": a - 0.05,
            "val_accuracy": a,
            "wall_time": (i + 1) * seconds_per_epoch,
        }
        for i, a in enumerate(accuracies)
    ]


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figure `plot_runs` would save, instead of a PNG."""
    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    monkeypatch.setattr(plotting, "save_figure", keep)
    return figures


def test_runs_against_epochs_and_minutes(drawn, tmp_path):
    runs = {"fast": _rows([0.5, 0.8, 0.92], 60), "slow": _rows([0.4, 0.7], 300)}
    plotting.plot_runs(runs, tmp_path / "p.png", against=("epoch", "minutes"), target=10.0)
    by_epoch, by_minutes = drawn[0].axes
    lines = {line.get_label(): line for line in by_epoch.get_lines()}
    assert list(lines["fast test"].get_xdata()) == [1, 2, 3]
    assert list(lines["fast test"].get_ydata()) == pytest.approx([50, 20, 8])
    assert list(lines["slow train"].get_ydata()) == pytest.approx([65, 35])
    minutes = {line.get_label(): line for line in by_minutes.get_lines()}
    assert list(minutes["slow test"].get_xdata()) == pytest.approx([5, 10])
    assert list(minutes["fast test"].get_xdata()) == pytest.approx([1, 2, 3])
    assert "fast train" not in minutes  # train error only against epochs
    assert by_minutes.get_xlabel() == "wall time (minutes)"
    # the target line, at 10% error, on both panels
    for ax in (by_epoch, by_minutes):
        assert any(list(line.get_ydata()) == [10.0, 10.0] for line in ax.get_lines())


def test_a_deadline_marks_the_minutes_panel_only(drawn, tmp_path):
    runs = {"a": _rows([0.5, 0.8], 60)}
    plotting.plot_runs(runs, tmp_path / "p.png", against=("epoch", "minutes"), deadline=60)
    by_epoch, by_minutes = drawn[0].axes
    minutes = {line.get_label(): line for line in by_minutes.get_lines()}
    assert list(minutes["60 min"].get_xdata()) == [60, 60]
    assert "60 min" in [t.get_text() for t in by_minutes.get_legend().get_texts()]
    assert "60 min" not in [line.get_label() for line in by_epoch.get_lines()]


def test_one_panel_by_default(drawn, tmp_path):
    plotting.plot_runs({"a": _rows([0.5], 60)}, tmp_path / "p.png", title="t")
    assert len(drawn[0].axes) == 1 and drawn[0].axes[0].get_title() == "t"


@pytest.mark.parametrize("against", [(), ("hours",), ("epoch", "steps")])
def test_an_unknown_axis_is_a_clear_error(tmp_path, against):
    with pytest.raises(ValueError, match="against must name"):
        plotting.plot_runs({"a": _rows([0.5], 60)}, tmp_path / "p.png", against=against)


def test_a_one_epoch_run_is_drawn_as_points(drawn, tmp_path):
    plotting.plot_runs({"a": _rows([0.5], 60)}, tmp_path / "p.png")
    lines = {line.get_label(): line for line in drawn[0].axes[0].get_lines()}
    assert lines["a test"].get_marker() not in ("None", None, "")
    assert lines["a train"].get_marker() not in ("None", None, "")


def _overlaps(legend, ax):
    renderer = ax.figure.canvas.get_renderer()
    return legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_a_long_legend_goes_beside_the_panel(drawn, tmp_path):
    # Four runs: eight entries, which inside the axes would cover the ends of the curves.
    runs = {name: _rows([0.3, 0.5, 0.6], 60) for name in "abcd"}
    plotting.plot_runs(runs, tmp_path / "p.png")
    ax = drawn[0].axes[0]
    ax.figure.canvas.draw()
    assert len(ax.get_legend().get_texts()) == 8
    assert not _overlaps(ax.get_legend(), ax)


def test_a_short_legend_stays_inside(drawn, tmp_path):
    plotting.plot_runs({"a": _rows([0.3, 0.5], 60), "b": _rows([0.4, 0.6], 60)}, tmp_path / "p.png")
    ax = drawn[0].axes[0]
    ax.figure.canvas.draw()
    assert _overlaps(ax.get_legend(), ax)
