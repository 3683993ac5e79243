#!/usr/bin/env python3
"""The arithmetic of scripts/bench.sh: from the timed runs it recorded, the medians per phase,
the ratios against skopeo and the curl floor, the targets and whether they pass; written as
JSON, and printed as a table.

    bench_report.py --runs runs.tsv --extra extra.tsv --workload workload.json \
        --notes notes.txt --meta meta.json --out results.json

runs.tsv:  phase, run, wall s, peak RSS KiB, CPU s, registry CPU s (may be empty), per line.
extra.tsv: phase, key, value (e.g. bytes_written, digests_changed): the max per key is kept.
Serve phases (serve_ferry_cN, serve_dist_cN) carry bytes_pulled, manifest_p50_ms,
manifest_p99_ms (as the loading clients see it), probe_p50_ms and probe_p99_ms (a probe
thread of its own: the server's latency under load), errors and server_rss_kib as extras: their MB/s is bytes pulled over the
median wall, and their peak RSS is the server's.
meta.json: date, scale, runs, quick, reimport_runs, curl_parallel, host, versions.
Exit status 0; the result's "pass" says whether every target with a value passed.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_scale_report  # noqa: E402  (the --scale workload: its own rows and table)
from bench_stats import dash, median, passes, r2  # noqa: E402,F401  (median: tests use br.median)

# Phases in the order the table shows them.
ORDER = [
    "ferry_export", "ferry_export_h2", "skopeo_copy", "skopeo_sync", "curl_floor", "curl_files", "curl_null",
    "ferry_big", "ferry_import", "ferry_import_h2", "skopeo_import_oci", "skopeo_import_sync", "ferry_reimport",
    "skopeo_reimport", "skopeo_reimport_oci", "delta_export_full", "delta_export",
    "delta_import_full", "delta_import", "archive_ferry", "archive_docker", "ferry_inspect", "ferry_verify",
    "sha256_floor",
]






def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def serve_phase(p):
    """(server, clients) of a serve phase name such as serve_ferry_c32, else None."""
    parts = p.split("_")
    if len(parts) == 3 and parts[0] == "serve" and parts[2].startswith("c") and parts[2][1:].isdigit():
        return parts[1], int(parts[2][1:])
    return None


def phases(runs, extra, workload):
    """Per phase: its runs, median wall and CPU, MB/s, peak RSS, and the extra values."""
    out = {}
    for p in sorted({r[0] for r in runs}):
        rows = [
            {
                "run": int(r[1]),
                "wall_s": float(r[2]),
                "rss_kib": float(r[3]),
                "cpu_s": float(r[4]),
                "registry_cpu_s": float(r[5]) if len(r) > 5 and r[5] != "" else None,
            }
            for r in runs
            if r[0] == p
        ]
        # No bytes moved: a no-op re-import, and inspect (it reads metadata, not the blobs).
        noop = "reimport" in p or p == "ferry_inspect"
        nbytes = workload["big"]["unique_bytes"] if p == "ferry_big" else workload["unique_bytes"]
        med = median([r["wall_s"] for r in rows])
        ph = {
            "runs": rows,
            "median_wall_s": med,
            "mb_per_s": None if noop or not med else r2(nbytes / 1e6 / med),
            "peak_rss_mib": r2(max(r["rss_kib"] for r in rows) / 1024),
            "median_cpu_s": median([r["cpu_s"] for r in rows]),
            "median_registry_cpu_s": median([r["registry_cpu_s"] for r in rows]),
            "unique_bytes": 0 if noop else nbytes,
        }
        # CPU-seconds per GB moved: on 2 cores shared with the registry, CPU is the limit.
        ph["cpu_s_per_gb"] = r2(ph["median_cpu_s"] / (nbytes / 1e9)) if not noop and nbytes else None
        for key in sorted({x[1] for x in extra if x[0] == p}):
            ph[key] = max(float(x[2]) for x in extra if x[0] == p and x[1] == key)
            if ph[key].is_integer():
                ph[key] = int(ph[key])
        if p.startswith("delta_"):
            # Sizes of their own: the bundle each writes or pushes.
            src = "delta_export_full" if p == "delta_import_full" else "delta_export" if p == "delta_import" else p
            nb = next((float(x[2]) for x in extra if x[0] == src and x[1] == "bytes_written"), None)
            ph["unique_bytes"] = int(nb) if nb else 0
            ph["mb_per_s"] = r2(nb / 1e6 / med) if nb and med else None
        if serve_phase(p):
            ph["unique_bytes"] = 0
            ph["mb_per_s"] = r2(ph["bytes_pulled"] / 1e6 / med) if ph.get("bytes_pulled") and med else None
            ph["client_peak_rss_mib"] = ph["peak_rss_mib"]
            ph["peak_rss_mib"] = r2(ph["server_rss_kib"] / 1024) if "server_rss_kib" in ph else None
        out[p] = ph
    return out


def ratios(ph):
    def ratio(a, b):
        if a in ph and b in ph and ph[b]["median_wall_s"]:
            return r2(ph[a]["median_wall_s"] / ph[b]["median_wall_s"])
        return None

    imports = [p for p in ("skopeo_import_oci", "skopeo_import_sync") if p in ph]
    fastest = min(imports, key=lambda p: ph[p]["median_wall_s"]) if imports else None
    return {
        "skopeo_sync_over_ferry": ratio("skopeo_sync", "ferry_export"),
        "skopeo_copy_over_ferry": ratio("skopeo_copy", "ferry_export"),
        "ferry_over_curl": ratio("ferry_export", "curl_floor"),
        "ferry_over_curl_files": ratio("ferry_export", "curl_files"),
        "ferry_over_curl_null": ratio("ferry_export", "curl_null"),
        "ferry_h2_over_h1": ratio("ferry_export_h2", "ferry_export"),
        "ferry_import_h2_over_h1": ratio("ferry_import_h2", "ferry_import"),
        "ferry_verify_over_sha256": ratio("ferry_verify", "sha256_floor"),
        "skopeo_import_oci_over_ferry": ratio("skopeo_import_oci", "ferry_import"),
        "skopeo_import_sync_over_ferry": ratio("skopeo_import_sync", "ferry_import"),
        "skopeo_fastest_import": fastest,
        "skopeo_fastest_import_over_ferry": ratio(fastest, "ferry_import") if fastest else None,
        "skopeo_reimport_over_ferry": ratio("skopeo_reimport", "ferry_reimport"),
        "skopeo_reimport_oci_over_ferry": ratio("skopeo_reimport_oci", "ferry_reimport"),
        "archive_docker_over_ferry": ratio("archive_docker", "archive_ferry"),
        # What carrying every image's signature costs (the same signed workload, with and
        # without --remove-signatures).
        "signed_export_over_nosig": ratio("signed_export", "signed_export_nosig"),
        "signed_import_over_nosig": ratio("signed_import", "signed_import_nosig"),
        # ferry serve's throughput over distribution's, per client count.
        "serve_ferry_over_dist": {
            str(n): r2(ph[f"serve_ferry_c{n}"]["mb_per_s"] / ph[f"serve_dist_c{n}"]["mb_per_s"])
            for n in serve_clients(ph)
            if f"serve_dist_c{n}" in ph and ph[f"serve_ferry_c{n}"].get("mb_per_s")
            and ph[f"serve_dist_c{n}"].get("mb_per_s")
        },
    }


def serve_clients(ph):
    """The client counts ferry serve was measured at, ascending."""
    return sorted(c for (server, c) in filter(None, map(serve_phase, ph)) if server == "ferry")




def cpu_excess(ph):
    """ferry export's CPU-seconds per GB beyond curl's plus sha256's (the work curl does not
    do), or None without the three phases."""
    per = [ph.get(p, {}).get("cpu_s_per_gb") for p in ("ferry_export", "curl_floor", "sha256_floor")]
    if any(x is None for x in per):
        return None
    return r2(per[0] - per[1] - per[2])


def targets(ph, rt, workload):
    """Every target with a value in this run, and whether it passes."""
    def rss(*names):
        vals = [ph[n]["peak_rss_mib"] for n in names if n in ph and ph[n]["peak_rss_mib"] is not None]
        return max(vals) if vals else None

    fastest = rt["skopeo_fastest_import"]
    wanted = [
        ("export vs skopeo sync (digest-preserving)", "skopeo_sync / ferry wall", rt["skopeo_sync_over_ferry"], ">=", 2.5),
        ("export vs skopeo copy (fastest path)", "skopeo_copy / ferry wall", rt["skopeo_copy_over_ferry"], ">=", 1.5),
        ("export vs curl floor", "ferry / curl wall", rt["ferry_over_curl"], "<=", 1.15),
        ("export CPU vs curl + sha256", "ferry CPU s/GB - (curl CPU s/GB + sha256 CPU s/GB)",
         cpu_excess(ph), "<=", 0),
        ("offline verify vs sha256 (openssl) on every core", "ferry_verify / sha256_floor wall",
         rt.get("ferry_verify_over_sha256"), "<=", 1.1),
        ("inspect of the bundle (nothing hashed)", "ferry_inspect median wall s",
         ph.get("ferry_inspect", {}).get("median_wall_s"), "<", 0.5),
        ("export peak RSS", "MiB", rss("ferry_export"), "<=", 64),
        ("export peak RSS with a big layer", "MiB", rss("ferry_big"), "<=", 64),
        (f"import vs skopeo (fastest path: {fastest})", f"{fastest} / ferry_import wall", rt["skopeo_fastest_import_over_ferry"], ">=", 1.5),
        (f"no-op re-import of {workload['images']} images", "ferry_reimport median wall s",
         ph.get("ferry_reimport", {}).get("median_wall_s"), "<", 0.3),
        ("import peak RSS", "MiB, max of ferry_import and ferry_reimport", rss("ferry_import", "ferry_reimport"), "<=", 64),
    ]
    if rt.get("archive_docker_over_ferry") is not None:
        wanted.append(("archive import vs docker load + tag + push", "archive_docker / archive_ferry wall",
                       rt["archive_docker_over_ferry"], ">=", 2.0))
        wanted.append(("archive import peak RSS", "MiB", rss("archive_ferry"), "<=", 64))
    if rt.get("signed_export_over_nosig") is not None:
        wanted.append(("export cost of carrying every image's signature", "signed_export / signed_export_nosig wall",
                       rt["signed_export_over_nosig"], "<=", 1.05))
    if rt.get("signed_import_over_nosig") is not None:
        wanted.append(("import cost of carrying every image's signature", "signed_import / signed_import_nosig wall",
                       rt["signed_import_over_nosig"], "<=", 1.05))
    for n, ratio in sorted(rt.get("serve_ferry_over_dist", {}).items(), key=lambda kv: int(kv[0])):
        wanted.append((f"serve throughput vs distribution, {n} clients", "ferry MB/s / distribution MB/s", ratio, ">=", 1.5))
    serve = [p for p in ph if serve_phase(p)]
    if serve:
        wanted.append(("serve errors", "errors in every serve measurement, both servers",
                       sum(ph[p].get("errors", 0) for p in serve), "<=", 0))
        most = max(serve_clients(ph), default=None)
        if most is not None:
            wanted.append((f"serve manifest GET p99 at {most} clients", "ms, latency probe, max over runs",
                           ph[f"serve_ferry_c{most}"].get("probe_p99_ms"), "<", 20))
        wanted.append(("serve peak RSS", "MiB, ferry serve, max over client counts",
                       rss(*[p for p in serve if serve_phase(p)[0] == "ferry"]), "<=", 64))
    return [
        {"name": n, "metric": m, "value": v, "op": op, "target": t, "pass": passes(v, op, t)}
        for (n, m, v, op, t) in wanted
        if v is not None
    ]


def report(runs, extra, workload, notes, meta, scale_rows=()):
    ph = phases(runs, extra, workload)
    rt = ratios(ph)
    tg = targets(ph, rt, workload)
    scale = bench_scale_report.summarize(list(scale_rows)) if scale_rows else None
    if scale:
        tg += scale["targets"]
    return {
        "scale_workload": scale,
        **meta,
        "workload": workload,
        "phases": ph,
        "ratios": rt,
        "targets": tg,
        "pass": all(t["pass"] for t in tg),
        "notes": notes,
    }




def table(result):
    w = result["workload"]
    lines = [
        f"ferry benchmark {result.get('date')}: {result.get('scale')} workload, {w['images']} images, "
        f"{w['unique_blobs']} unique blobs, {int(w['unique_bytes'] / 1e6)} MB unique "
        f"({int(w['bytes_without_dedup'] / 1e6)} MB counted per image); median of "
        f"{result.get('runs_per_phase')} run(s), re-imports {result.get('runs_per_phase')}x{result.get('reimports_per_run')}",
        "",
    ]
    row = "{:<20}{:>9}{:>9}{:>14}{:>8}{:>10}{:>12}{:>11}"
    lines.append(row.format("phase", "wall s", "MB/s", "peak RSS MiB", "CPU s", "CPU s/GB", "written MB", "reg CPU s"))
    def order(k):
        sp = serve_phase(k)
        return (len(ORDER), sp[1], sp[0] != "ferry") if sp else (ORDER.index(k) if k in ORDER else len(ORDER) + 1, 0, False)

    for p in sorted(result["phases"], key=order):
        v = result["phases"][p]
        written = int(v["bytes_written"] / 1e6) if v.get("bytes_written") else "-"
        lines.append(row.format(p, v["median_wall_s"], dash(v["mb_per_s"]), dash(v["peak_rss_mib"]),
                                v["median_cpu_s"], dash(v.get("cpu_s_per_gb")), written,
                                dash(v["median_registry_cpu_s"])))
    rt = result["ratios"]
    for label, pairs in (
        ("export ratios", [("skopeo_sync/ferry", "skopeo_sync_over_ferry"), ("skopeo_copy/ferry", "skopeo_copy_over_ferry"),
                           ("ferry/curl", "ferry_over_curl"), ("ferry/curl_files", "ferry_over_curl_files"),
                           ("ferry/curl_null", "ferry_over_curl_null"), ("ferry h2/h1.1", "ferry_h2_over_h1")]),
        ("import ratios", [("skopeo_import_oci/ferry", "skopeo_import_oci_over_ferry"),
                           ("skopeo_import_sync/ferry", "skopeo_import_sync_over_ferry"),
                           ("skopeo_reimport/ferry", "skopeo_reimport_over_ferry"),
                           ("skopeo_reimport_oci/ferry", "skopeo_reimport_oci_over_ferry"),
                           ("ferry h2/h1.1", "ferry_import_h2_over_h1")]),
        ("verify ratios", [("ferry_verify/sha256_floor", "ferry_verify_over_sha256")]),
        ("signature ratios", [("signed_export/nosig", "signed_export_over_nosig"),
                              ("signed_import/nosig", "signed_import_over_nosig")]),
    ):
        parts = [f"{n} {rt[k]}" for n, k in pairs if rt.get(k) is not None]
        if parts:
            lines.append("")
            lines.append(f"{label}: " + "  ".join(parts))
    ph = result["phases"]
    if "archive_ferry" in ph and "archive_docker" in ph:
        f, d = ph["archive_ferry"], ph["archive_docker"]
        lines.append("")
        lines.append(f"archive: rancher-images.tar.gz {int(f.get('archive_bytes', 0) / 1e6)} MB imported by ferry in {f['median_wall_s']} s "
                     f"({int(f.get('disk_bytes', 0) / 1e6)} MB spooled), by docker load + tag + push in {d['median_wall_s']} s "
                     f"({int(d.get('disk_bytes', 0) / 1e6)} MB of engine storage): {dash(rt.get('archive_docker_over_ferry'))}x")
    if "delta_export" in ph and "delta_export_full" in ph:
        full, delta = ph["delta_export_full"], ph["delta_export"]
        lines.append("")
        lines.append(f"upgrade: full new bundle {int(full.get('bytes_written', 0) / 1e6)} MB, delta {int(delta.get('bytes_written', 0) / 1e6)} MB "
                     f"({int(delta.get('bytes_left_out', 0) / 1e6)} MB of layers left out); export {full['median_wall_s']} s vs {delta['median_wall_s']} s"
                     + (f"; import {ph['delta_import_full']['median_wall_s']} s vs {ph['delta_import']['median_wall_s']} s"
                        if "delta_import_full" in ph and "delta_import" in ph else ""))
    for n in serve_clients(ph):
        lines.append("")
        for server, label in (("ferry", "ferry serve"), ("dist", "distribution")):
            v = ph.get(f"serve_{server}_c{n}")
            if v:
                lines.append(f"serve, {n} clients, {label}: {dash(v['mb_per_s'])} MB/s, manifest GET p50/p99 "
                             f"{dash(v.get('probe_p50_ms'))}/{dash(v.get('probe_p99_ms'))} ms (probe), "
                             f"{dash(v.get('manifest_p50_ms'))}/{dash(v.get('manifest_p99_ms'))} ms (clients), "
                             f"{v.get('errors', 0)} errors, server peak RSS {dash(v['peak_rss_mib'])} MiB, "
                             f"server CPU {dash(v['median_registry_cpu_s'])} s")
        ratio = rt.get("serve_ferry_over_dist", {}).get(str(n))
        if ratio is not None:
            lines.append(f"serve ratio, {n} clients: ferry/distribution throughput {ratio}")
    if result.get("scale_workload"):
        lines.append("")
        lines += bench_scale_report.table(result["scale_workload"])
    lines.append("")
    for t in result["targets"]:
        lines.append(f"{'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {t['metric']} = {t['value']} (target {t['op']} {t['target']})")
    if ph.get("skopeo_copy", {}).get("digests_changed"):
        lines.append(f"note: skopeo copy into the OCI layout changed {ph['skopeo_copy']['digests_changed']} of {w['images']} top-level digests")
    if "skopeo_import_oci" in ph:
        lines.append(f"note: skopeo_import_oci pushed skopeo's rewritten (OCI) manifests: {ph['skopeo_import_oci'].get('digests_changed', 0)} "
                     f"of {w['images']} top-level digests in the target differ from the originals (ferry_import and skopeo_import_sync push the original digests)")
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def main(argv):
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("runs", "extra", "workload", "notes", "meta", "out"):
        a.add_argument("--" + name, required=True)
    a.add_argument("--scale", help="rows of the scale phase (scripts/bench_scale_report.py)")
    args = a.parse_args(argv)
    scale_rows = read_tsv(args.scale) if args.scale and os.path.exists(args.scale) else []
    with open(args.workload) as f:
        workload = json.load(f)
    with open(args.meta) as f:
        meta = json.load(f)
    with open(args.notes) as f:
        notes = [line.rstrip("\n") for line in f if line.strip()]
    result = report(read_tsv(args.runs), read_tsv(args.extra), workload, notes, meta, scale_rows)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
