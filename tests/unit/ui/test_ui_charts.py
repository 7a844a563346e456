"""Server-rendered SVG charts: accessible images whose marks match the figures."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from admin_ui.charts import Series, _nice_max, bar_chart, line_chart, weight_bars

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_bar_chart_is_a_labelled_image_with_one_bar_per_value():
    svg = _parse(bar_chart("Messages per minute", ["10:00", "10:01", "10:02"], [3, 0, 7], unit="per minute"))
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    assert svg.find(f"{SVG}title").get("id") == title_id
    assert svg.find(f"{SVG}title").text == "Messages per minute"
    assert "total 10, highest 7" in svg.find(f"{SVG}desc").text
    assert svg.find(f"{SVG}desc").get("id") == desc_id
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 3
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0
    assert abs(heights[2] / heights[0] - 7 / 3) < 0.01  # bars are to scale


def test_chart_ids_are_unique_and_titles_escaped():
    first, second = bar_chart("<script>", ["a"], [1]), bar_chart("b & c", ["a"], [1])
    assert _parse(first).get("id") != _parse(second).get("id")
    assert "<script>" not in str(first) and "&lt;script&gt;" in str(first)
    assert "b &amp; c" in str(second)


def test_a_line_chart_draws_each_series_to_scale():
    svg = _parse(line_chart("Burndown", ["d1", "d2", "d3"], [Series("Systems", [6, 4, 0]),
                                                               Series("Records", [3, 2, 1], "records")]))
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 2 and "hub-chart__line--records" in lines[1].get("class")
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert ys[0] < ys[1] < ys[2]  # falling values are drawn lower each day
    assert len(svg.findall(f"{SVG}circle")) == 6
    assert re.search(r"Systems from 6 to 0", svg.find(f"{SVG}desc").text)


def test_axis_tops_are_round_numbers():
    assert [_nice_max(v) for v in (0, 0.3, 1, 7, 11, 240, 999)] == [1, 0.5, 1, 10, 20, 500, 1000]


def test_weight_bars_put_evidence_for_right_and_against_left():
    svg = _parse(weight_bars("Evidence", [("given", 6.4), ("dob", -3.2)], total=3.2))
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 3
    axis = float(svg.find(f"{SVG}line").get("x1"))
    assert float(bars[0].get("x")) == axis and "bar--error" not in bars[0].get("class")
    assert float(bars[1].get("x")) + float(bars[1].get("width")) == pytest.approx(axis, abs=0.2)
    assert "bar--error" in bars[1].get("class")
    assert float(bars[0].get("width")) == pytest.approx(2 * float(bars[1].get("width")), rel=0.01)
    assert "given +6.40 bits; dob -3.20 bits; total +3.20 bits" in svg.find(f"{SVG}desc").text
