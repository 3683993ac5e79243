#!/usr/bin/env python3
"""Tests of bench_report.py: medians, ratios, no-op phases, targets (run by scripts/test.sh)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import bench_report as br  # noqa: E402

WORKLOAD = {"images": 28, "unique_blobs": 98, "unique_bytes": 100_000_000,
            "bytes_without_dedup": 200_000_000, "big": {"unique_bytes": 1_000_000_000}}


def run(phase, n, wall, rss=20480, cpu=1.0, reg=""):
    return [phase, str(n), str(wall), str(rss), str(cpu), str(reg)]


class Report(unittest.TestCase):
    def test_median_of_odd_even_and_missing(self):
        self.assertEqual(br.median([3, 1, 2]), 2)
        self.assertEqual(br.median([4, 1, 2, 3]), 2.5)
        self.assertIsNone(br.median([None]))

    def test_phases_ratios_and_targets(self):
        runs = [
            run("ferry_export", 1, 1.0, cpu=0.5, reg=0.4), run("ferry_export", 2, 3.0), run("ferry_export", 3, 2.0),
            run("skopeo_sync", 1, 6.0), run("skopeo_copy", 1, 3.0),
            run("curl_floor", 1, 1.8),
            run("ferry_import", 1, 2.0), run("skopeo_import_oci", 1, 5.0), run("skopeo_import_sync", 1, 4.0),
            run("ferry_reimport", 1, 0.1), run("ferry_reimport", 2, 0.2),
        ]
        extra = [["ferry_export", "bytes_written", "100"], ["ferry_export", "bytes_written", "120"]]
        r = br.report(runs, extra, WORKLOAD, ["a note"], {"date": "d", "scale": "small"})
        ex = r["phases"]["ferry_export"]
        self.assertEqual(ex["median_wall_s"], 2.0)
        self.assertEqual(ex["mb_per_s"], 50.0)
        self.assertEqual(ex["bytes_written"], 120, "the max of the extra values")
        self.assertEqual(ex["median_registry_cpu_s"], 0.4, "empty registry CPU fields are skipped")
        self.assertIsNone(r["phases"]["ferry_reimport"]["mb_per_s"], "a no-op has no rate")
        self.assertAlmostEqual(r["phases"]["ferry_reimport"]["median_wall_s"], 0.15)
        rt = r["ratios"]
        self.assertEqual(rt["skopeo_sync_over_ferry"], 3.0)
        self.assertEqual(rt["ferry_over_curl"], 1.11)
        self.assertEqual(rt["skopeo_fastest_import"], "skopeo_import_sync")
        self.assertEqual(rt["skopeo_fastest_import_over_ferry"], 2.0)
        self.assertIsNone(rt["ferry_over_curl_null"])
        by = {t["name"]: t for t in r["targets"]}
        self.assertTrue(by["export vs skopeo sync (digest-preserving)"]["pass"])
        self.assertTrue(by["export vs curl floor"]["pass"])
        self.assertTrue(by["no-op re-import of 28 images"]["pass"])
        self.assertNotIn("export peak RSS with a big layer", by, "no ferry_big run, no target")
        self.assertTrue(r["pass"])
        text = br.table(r)
        self.assertIn("PASS  export vs curl floor: ferry / curl wall = 1.11 (target <= 1.15)", text)
        self.assertIn("note: a note", text)

    def test_cpu_per_gb_h2_and_verify_ratios(self):
        runs = [run("ferry_export", 1, 2.0, cpu=0.9), run("ferry_export_h2", 1, 2.5),
                run("curl_floor", 1, 2.0, cpu=0.6), run("sha256_floor", 1, 1.0, cpu=0.2),
                run("ferry_verify", 1, 1.2, cpu=0.3), run("ferry_import", 1, 4.0), run("ferry_import_h2", 1, 5.0)]
        r = br.report(runs, [], WORKLOAD, [], {})
        ph, rt = r["phases"], r["ratios"]
        self.assertEqual(ph["ferry_export"]["cpu_s_per_gb"], 9.0, "0.9 CPU s over 0.1 GB")
        self.assertEqual(rt["ferry_h2_over_h1"], 1.25)
        self.assertEqual(rt["ferry_import_h2_over_h1"], 1.25)
        self.assertEqual(rt["ferry_verify_over_sha256"], 1.2)
        by = {t["name"]: t for t in r["targets"]}
        cpu = by["export CPU vs curl + sha256"]
        self.assertEqual(cpu["value"], 1.0, "9 - (6 + 2) CPU s/GB")
        self.assertFalse(cpu["pass"])
        self.assertFalse(by["offline verify vs sha256 (openssl) on every core"]["pass"])
        self.assertIn("ferry h2/h1.1 1.25", br.table(r))

    def test_a_missed_target_fails_the_run(self):
        runs = [run("ferry_export", 1, 2.0), run("curl_floor", 1, 1.0)]
        r = br.report(runs, [], WORKLOAD, [], {})
        self.assertFalse(r["pass"])
        self.assertIn("FAIL  export vs curl floor", br.table(r))

    def test_serve_phases_rate_latency_errors_and_server_rss(self):
        runs = [run("serve_ferry_c8", 1, 10.0, rss=9000), run("serve_dist_c8", 1, 20.0),
                run("serve_ferry_c32", 1, 10.0), run("serve_dist_c32", 1, 14.0)]
        extra = []
        for phase, p99, errors, srss in (("serve_ferry_c8", 3.0, 0, 30 * 1024), ("serve_dist_c8", 9.0, 0, 50 * 1024),
                                         ("serve_ferry_c32", 25.0, 0, 40 * 1024), ("serve_dist_c32", 30.0, 2, 60 * 1024)):
            extra += [[phase, "bytes_pulled", "8000000000"], [phase, "manifest_p99_ms", str(p99 * 2)],
                      [phase, "probe_p99_ms", str(p99)],
                      [phase, "manifest_p50_ms", "1.5"], [phase, "errors", str(errors)],
                      [phase, "server_rss_kib", str(srss)]]
        r = br.report(runs, extra, WORKLOAD, [], {})
        ph = r["phases"]
        self.assertEqual(ph["serve_ferry_c8"]["mb_per_s"], 800.0, "bytes pulled over the wall, not the workload")
        self.assertEqual(ph["serve_ferry_c8"]["peak_rss_mib"], 30.0, "the server's RSS")
        self.assertEqual(ph["serve_ferry_c8"]["client_peak_rss_mib"], round(9000 / 1024 * 100) / 100)
        self.assertEqual(r["ratios"]["serve_ferry_over_dist"], {"8": 2.0, "32": 1.4})
        by = {t["name"]: t for t in r["targets"]}
        self.assertTrue(by["serve throughput vs distribution, 8 clients"]["pass"])
        self.assertFalse(by["serve throughput vs distribution, 32 clients"]["pass"])
        self.assertEqual(by["serve errors"]["value"], 2)
        self.assertFalse(by["serve errors"]["pass"])
        self.assertEqual(by["serve manifest GET p99 at 32 clients"]["value"], 25.0)
        self.assertEqual(by["serve peak RSS"]["value"], 40.0, "ferry's servers only")
        text = br.table(r)
        self.assertIn("serve, 32 clients, ferry serve: 800.0 MB/s", text)
        self.assertLess(text.index("serve_ferry_c8 "), text.index("serve_dist_c8 "))
        self.assertLess(text.index("serve_dist_c8 "), text.index("serve_ferry_c32 "))

    def test_delta_phases_rate_their_own_bundles(self):
        runs = [run("delta_export_full", 1, 10.0), run("delta_export", 1, 2.0),
                run("delta_import_full", 1, 20.0), run("delta_import", 1, 4.0)]
        extra = [["delta_export_full", "bytes_written", "2000000000"], ["delta_export", "bytes_written", "400000000"],
                 ["delta_export", "bytes_left_out", "1600000000"]]
        r = br.report(runs, extra, WORKLOAD, [], {})
        ph = r["phases"]
        self.assertEqual(ph["delta_export_full"]["mb_per_s"], 200.0)
        self.assertEqual(ph["delta_export"]["mb_per_s"], 200.0)
        self.assertEqual(ph["delta_import"]["mb_per_s"], 100.0, "the delta's bytes over the import's wall")
        text = br.table(r)
        self.assertIn("upgrade: full new bundle 2000 MB, delta 400 MB (1600 MB of layers left out); export 10.0 s vs 2.0 s; import 20.0 s vs 4.0 s", text)

    def test_archive_phases_ratio_disk_and_targets(self):
        runs = [run("archive_ferry", 1, 10.0, rss=30 * 1024), run("archive_docker", 1, 35.0)]
        extra = [["archive_ferry", "disk_bytes", "1000000000"], ["archive_ferry", "archive_bytes", "2000000000"],
                 ["archive_docker", "disk_bytes", "6000000000"]]
        r = br.report(runs, extra, WORKLOAD, [], {})
        self.assertEqual(r["ratios"]["archive_docker_over_ferry"], 3.5)
        by = {t["name"]: t for t in r["targets"]}
        self.assertTrue(by["archive import vs docker load + tag + push"]["pass"])
        self.assertTrue(by["archive import peak RSS"]["pass"])
        self.assertIn("archive: rancher-images.tar.gz 2000 MB imported by ferry in 10.0 s (1000 MB spooled), by docker load + tag + push in 35.0 s (6000 MB of engine storage): 3.5x", br.table(r))

    def test_signature_ratios_and_targets(self):
        runs = [run("signed_export", 1, 10.4), run("signed_export", 2, 10.2), run("signed_export_nosig", 1, 10.0),
                run("signed_export_nosig", 2, 10.0), run("signed_import", 1, 8.0), run("signed_import_nosig", 1, 7.0)]
        r = br.report(runs, [], WORKLOAD, [], {})
        self.assertEqual(r["ratios"]["signed_export_over_nosig"], 1.03)
        self.assertEqual(r["ratios"]["signed_import_over_nosig"], 1.14)
        by = {t["name"]: t for t in r["targets"]}
        self.assertTrue(by["export cost of carrying every image's signature"]["pass"])
        self.assertFalse(by["import cost of carrying every image's signature"]["pass"])
        self.assertIn("signed_export/nosig 1.03", br.table(r))


if __name__ == "__main__":
    unittest.main()
