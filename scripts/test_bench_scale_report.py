#!/usr/bin/env python3
"""Tests of bench_scale_report.py: medians per step and N, seconds per 1,000 images, ratios,
memory per image beyond the manifests, targets (run by
`python3 -m unittest discover -s scripts -p 'test_*.py'`)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report as br  # noqa: E402
import bench_scale_report as sr  # noqa: E402


def row(step, n, run, wall, rss=20480, cpu=1.0, reg="", tokens=""):
    return [step, str(n), str(run), str(wall), str(rss), str(cpu), str(reg), str(tokens)]


def workload(n, manifest_per_image=500):
    return [["workload", str(n), "images", str(n)], ["workload", str(n), "repositories", str(n)],
            ["workload", str(n), "manifest_bytes", str(n * manifest_per_image)]]


def full_rows():
    """N = 100, 1000 and 3000: ferry in 3 runs, skopeo (sync) in run 1 at N <= 1000."""
    rows = workload(100) + workload(1000) + workload(3000) + [["note", "a note"]]
    for n, scale in ((100, 0.1), (1000, 1.0), (3000, 3.0)):
        for run, jitter in ((1, 1.2), (2, 1.0), (3, 0.9)):
            # RSS: 20 MiB plus 1,500 bytes per image (500 of them the manifest).
            rss = 20480 + n * 1500 / 1024
            rows += [
                row("ferry_lock", n, run, 5.0 * scale * jitter, rss=rss, tokens=2),
                row("ferry_export", n, run, 10.0 * scale * jitter, rss=rss, reg=3.0, tokens=3),
                row("ferry_import", n, run, 8.0 * scale * jitter, rss=rss, reg=2.0),
                row("ferry_reimport", n, run, 1.5 * scale * jitter, rss=rss),
                row("ferry_verify", n, run, 2.0 * scale * jitter, rss=rss),
            ]
        if n <= 1000:
            rows += [row("skopeo_sync_export", n, 1, 60.0 * scale, rss=90000, tokens=n),
                     row("skopeo_sync_import", n, 1, 32.0 * scale, rss=80000)]
    return rows


class Parse(unittest.TestCase):
    def test_rows_of_three_kinds_and_empty_fields(self):
        rows = [row("ferry_lock", 100, 1, 1.5, reg="", tokens=""), ["workload", "100", "manifest_bytes", "51200"],
                ["note", "skopeo only in run 1"], [], ["ferry_lock", "100", "2", "2.5", "1000", "0.5"]]
        timed, wl, notes = sr.parse(rows)
        self.assertEqual(len(timed[("ferry_lock", 100)]), 2)
        self.assertIsNone(timed[("ferry_lock", 100)][0]["registry_cpu_s"])
        self.assertIsNone(timed[("ferry_lock", 100)][1]["token_requests"], "a short row: missing fields are empty")
        self.assertEqual(wl, {100: {"manifest_bytes": 51200}})
        self.assertEqual(notes, ["skopeo only in run 1"])

    def test_nothing_timed_is_no_summary(self):
        self.assertIsNone(sr.summarize([]))
        self.assertIsNone(sr.summarize(workload(100)))
        self.assertEqual(sr.table(None), [])


class Summary(unittest.TestCase):
    def setUp(self):
        self.s = sr.summarize(full_rows())

    def test_medians_and_seconds_per_1000_images(self):
        lock = self.s["steps"]["ferry_lock"]
        self.assertEqual(self.s["images"], [100, 1000, 3000])
        self.assertAlmostEqual(lock["1000"]["median_wall_s"], 5.0, "the median of 6.0, 5.0, 4.5")
        self.assertEqual(lock["1000"]["s_per_1000_images"], 5.0)
        self.assertEqual(lock["100"]["s_per_1000_images"], 5.0, "0.5 s for 100 images")
        self.assertEqual(lock["3000"]["s_per_1000_images"], 5.0)
        self.assertEqual(lock["3000"]["runs"], 3)
        self.assertEqual(lock["100"]["token_requests"], 2)
        self.assertEqual(self.s["steps"]["ferry_export"]["100"]["median_registry_cpu_s"], 3.0)
        self.assertIsNone(lock["100"]["median_registry_cpu_s"], "empty registry CPU fields are skipped")
        self.assertEqual(self.s["steps"]["skopeo_sync_export"]["1000"]["runs"], 1)
        self.assertNotIn("3000", self.s["steps"]["skopeo_sync_export"])

    def test_flat_cost_per_image_is_growth_one(self):
        g = self.s["per_image_growth"]
        self.assertEqual(g["ferry_lock"], {"from_images": 100, "to_images": 3000, "growth": 1.0})
        self.assertEqual(g["skopeo_sync_export"]["to_images"], 1000, "skopeo ran up to N = 1000")

    def test_growing_cost_per_image(self):
        rows = [row("ferry_lock", 100, 1, 0.5), row("ferry_lock", 1000, 1, 10.0)]
        s = sr.summarize(rows)
        self.assertEqual(s["steps"]["ferry_lock"]["1000"]["s_per_1000_images"], 10.0)
        self.assertEqual(s["per_image_growth"]["ferry_lock"]["growth"], 2.0)

    def test_ratios_per_n(self):
        rt = self.s["ratios_skopeo_over_ferry"]
        self.assertEqual(rt["export"], {"100": 6.0, "1000": 6.0})
        self.assertEqual(rt["import"], {"100": 4.0, "1000": 4.0})

    def test_memory_per_image_beyond_manifests(self):
        m = self.s["memory_per_image"]["ferry_export"]
        self.assertEqual((m["from_images"], m["to_images"]), (100, 3000))
        self.assertEqual(m["rss_bytes_per_image"], 1500)
        self.assertEqual(m["manifest_bytes_per_image"], 500)
        self.assertEqual(m["beyond_manifests_bytes_per_image"], 1000)
        self.assertNotIn("skopeo_sync_export", self.s["memory_per_image"], "ferry's steps only")

    def test_memory_uses_the_manifest_growth_between_the_two_workloads(self):
        rows = [row("ferry_lock", 100, 1, 1.0, rss=10000), row("ferry_lock", 1100, 1, 2.0, rss=11000),
                ["workload", "100", "manifest_bytes", "40000"], ["workload", "1100", "manifest_bytes", "540000"]]
        m = sr.summarize(rows)["memory_per_image"]["ferry_lock"]
        self.assertEqual(m["rss_bytes_per_image"], 1024, "1000 KiB over 1000 images")
        self.assertEqual(m["manifest_bytes_per_image"], 500, "500,000 bytes more over 1000 images")
        self.assertEqual(m["beyond_manifests_bytes_per_image"], 524)

    def test_targets(self):
        by = {t["name"]: t for t in self.s["targets"]}
        self.assertEqual(set(by), {
            "scale: export vs skopeo sync at 1000 images", "scale: import vs skopeo sync at 1000 images",
            "scale: no-op re-import of 1000 images", "scale: ferry lock of 3000 images",
            "scale: memory per image beyond its manifest"})
        self.assertEqual(by["scale: export vs skopeo sync at 1000 images"]["value"], 6.0)
        self.assertTrue(by["scale: export vs skopeo sync at 1000 images"]["pass"])
        self.assertFalse(by["scale: import vs skopeo sync at 1000 images"]["pass"], "4.0 < 5")
        self.assertEqual(by["scale: no-op re-import of 1000 images"]["value"], 1.5)
        self.assertTrue(by["scale: no-op re-import of 1000 images"]["pass"])
        self.assertEqual(by["scale: ferry lock of 3000 images"]["value"], 15.0)
        self.assertTrue(by["scale: ferry lock of 3000 images"]["pass"])
        mem = by["scale: memory per image beyond its manifest"]
        self.assertEqual((mem["value"], mem["op"], mem["target"], mem["pass"]), (1000, "<", 1024, True))
        for t in self.s["targets"]:
            self.assertEqual(set(t), {"name", "metric", "value", "op", "target", "pass"})

    def test_memory_target_takes_the_worst_step(self):
        # Four more runs of verify at N = 3000 with 3,000 bytes per image: their median wins.
        rows = full_rows() + [row("ferry_verify", 3000, run, 1.0, rss=20480 + 3000 * 3000 / 1024)
                              for run in (4, 5, 6, 7)]
        by = {t["name"]: t for t in sr.summarize(rows)["targets"]}
        mem = by["scale: memory per image beyond its manifest"]
        self.assertIn("ferry_verify", mem["metric"])
        self.assertFalse(mem["pass"])

    def test_only_targets_with_values(self):
        s = sr.summarize([row("ferry_lock", 50, 1, 1.0), row("ferry_export", 50, 1, 1.0),
                          row("skopeo_sync_export", 50, 1, 9.0), row("ferry_reimport", 50, 1, 0.2)])
        self.assertEqual(s["targets"], [], "no N = 1000 or 3000, a single N: no target")
        self.assertEqual(s["memory_per_image"], {})
        self.assertEqual(s["per_image_growth"], {})

    def test_table(self):
        lines = sr.table(self.s)
        text = "\n".join(lines)
        export_1000 = next(line for line in lines if line.startswith("export") and " 1000 " in line)
        self.assertIn("3/1", export_1000, "ferry's runs / skopeo's runs")
        self.assertTrue(export_1000.rstrip().endswith("6.0"), export_1000)
        lock_3000 = next(line for line in lines if line.startswith("lock") and " 3000 " in line)
        self.assertTrue(lock_3000.rstrip().endswith("-"), "no skopeo counterpart")
        self.assertIn("ferry_lock x1.0 (100->3000)", text)
        self.assertIn("ferry_export 1500 B (1000 beyond)", text)
        self.assertIn("note: a note", text)

    def test_bench_report_takes_the_scale_targets(self):
        wl = {"images": 28, "unique_blobs": 98, "unique_bytes": 100_000_000, "bytes_without_dedup": 200_000_000}
        r = br.report([], [], wl, [], {}, full_rows())
        names = [t["name"] for t in r["targets"]]
        self.assertIn("scale: ferry lock of 3000 images", names)
        self.assertFalse(r["pass"], "the import ratio target fails")
        self.assertIn("FAIL  scale: import vs skopeo sync at 1000 images", br.table(r))


if __name__ == "__main__":
    unittest.main()
