"""Tests of the chart writer (svgplot) and the curves write-up (curves_report):
`python3 -m unittest scripts/test_charts.py`, doctests included."""

import doctest
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curves_report  # noqa: E402
import svgplot  # noqa: E402

NS = "{http://www.w3.org/2000/svg}"


def load_tests(loader, tests, ignore):
    tests.addTests(doctest.DocTestSuite(svgplot))
    tests.addTests(doctest.DocTestSuite(curves_report))
    return tests


class LineChart(unittest.TestCase):
    def chart(self, **kw):
        series = [("ours", [(1, 100), (4, 400), (16, 900)]),
                  ("Apache", [(1, 200), (4, None), (16, 700)], {"dash": "6 3"})]
        return ET.fromstring(svgplot.line_chart("Sessions: set", series, "sessions", "ops/s", **kw))

    def test_is_well_formed_svg_with_title_labels_and_legend(self):
        root = self.chart(log_x=True)
        texts = [t.text for t in root.iter(NS + "text")]
        self.assertIn("Sessions: set", texts)
        self.assertIn("sessions (log scale)", texts)
        self.assertIn("ours", texts)
        self.assertIn("Apache", texts)

    def test_a_missing_point_breaks_the_line_but_keeps_the_others(self):
        root = self.chart()
        lines = root.findall(NS + "polyline")
        self.assertEqual(len(lines), 1, "ours is one line; Apache's two points are apart")
        self.assertEqual(len(root.findall(NS + "circle")), 5)

    def test_points_fall_inside_the_plot_area_and_larger_values_higher(self):
        root = self.chart(log_x=True, log_y=True)
        dots = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(NS + "circle")]
        for x, y in dots:
            self.assertTrue(svgplot.LEFT <= x <= svgplot.WIDTH - svgplot.RIGHT)
            self.assertTrue(svgplot.TOP <= y <= svgplot.HEIGHT - svgplot.BOTTOM)
        ours = dots[:3]
        self.assertLess(ours[2][1], ours[0][1], "900 ops/s drawn above 100")
        self.assertAlmostEqual(ours[1][0] - ours[0][0], ours[2][0] - ours[1][0], places=1)

    def test_given_x_ticks_are_the_ones_drawn(self):
        svg = svgplot.line_chart("t", [("a", [(1, 1), (7, 2)])], "members", "ops/s",
                                 x_ticks=[1, 3, 5, 7])
        labels = [t.text for t in ET.fromstring(svg).iter(NS + "text")]
        self.assertTrue({"1", "3", "5", "7"} <= set(labels))


class Medians(unittest.TestCase):
    def test_rounds_reduce_to_their_median_and_failed_runs_are_left_out(self):
        run = {"dim": "sessions", "workload": "set", "series": "", "server": "ours"}
        points = [dict(run, x=4, round=r, ops_per_sec=v) for r, v in enumerate([10, 30, 20])]
        points.append(dict(run, x=4, round=3, error="refused"))
        med = curves_report.medians(points)
        self.assertEqual(med[("sessions", "set", "", "ours")][4]["ops_per_sec"], 20)


if __name__ == "__main__":
    unittest.main()
