"""The arithmetic of the scale phase (scripts/bench_scale.sh): from the rows of scale.tsv, the
medians per step and image count N, seconds per 1,000 images (flat if the cost per image does
not grow with N), skopeo/ferry ratios, peak RSS and the memory each image adds beyond its
manifest, token requests, and the targets. Called by scripts/bench_report.py
(`summarize(rows)`, `table(summary)`); tested by scripts/test_bench_scale_report.py.

Rows (lists of strings, one per TSV line):
  STEP N RUN WALL_S PEAK_RSS_KIB CPU_S REGISTRY_CPU_S TOKEN_REQUESTS   a timed step (the last
                                                                       two may be empty)
  workload N KEY VALUE      a fact of the workload of N images (images, manifest_bytes, …)
  note TEXT                 a line for the table
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_stats import dash, median, passes, r2  # noqa: E402

# ferry's steps in table order, each with the skopeo step it is measured against (if any).
PAIRS = [
    ("ferry_lock", None),
    ("ferry_export", "skopeo_sync_export"),
    ("ferry_import", "skopeo_sync_import"),
    ("ferry_reimport", None),
    ("ferry_verify", None),
]
# The N the targets are set at.
RATIO_N = 1000
REIMPORT_N = 1000
LOCK_N = 3000
RATIO_TARGET = 5.0
REIMPORT_TARGET_S = 2.0
LOCK_TARGET_S = 30.0
BYTES_PER_IMAGE_TARGET = 1024






def r3(x):
    return None if x is None else round(x * 1000) / 1000


def num(s):
    """A float from a TSV field, None if it is empty."""
    return None if s is None or s == "" else float(s)


def per_1000(wall, n):
    return None if wall is None or not n else r3(wall / n * 1000)


def parse(rows):
    """(timed {(step, n): [run dicts]}, workload {n: {key: number}}, notes [text])."""
    timed, workload, notes = {}, {}, []
    for r in rows:
        if not r or not r[0]:
            continue
        if r[0] == "note":
            notes.append("\t".join(r[1:]))
        elif r[0] == "workload":
            v = float(r[3])
            workload.setdefault(int(r[1]), {})[r[2]] = int(v) if v.is_integer() else v
        else:
            r = list(r) + [""] * (8 - len(r))
            timed.setdefault((r[0], int(r[1])), []).append({
                "run": int(r[2]),
                "wall_s": float(r[3]),
                "rss_kib": num(r[4]),
                "cpu_s": num(r[5]),
                "registry_cpu_s": num(r[6]),
                "token_requests": num(r[7]),
            })
    return timed, workload, notes


def step_summary(runs, n):
    wall = median([r["wall_s"] for r in runs])
    rss = median([r["rss_kib"] for r in runs])
    tokens = median([r["token_requests"] for r in runs])
    return {
        "runs": len(runs),
        "median_wall_s": r3(wall),
        "s_per_1000_images": per_1000(wall, n),
        # Median over the runs of each run's peak RSS.
        "peak_rss_kib": rss,
        "peak_rss_mib": None if rss is None else r2(rss / 1024),
        "max_peak_rss_kib": max((r["rss_kib"] for r in runs if r["rss_kib"] is not None), default=None),
        "median_cpu_s": r2(median([r["cpu_s"] for r in runs])),
        "median_registry_cpu_s": r2(median([r["registry_cpu_s"] for r in runs])),
        "token_requests": None if tokens is None else (int(tokens) if float(tokens).is_integer() else tokens),
    }


def memory_growth(steps, workload, ns):
    """Per ferry step measured at the smallest and the largest N: the peak RSS each extra image
    adds, what its manifest weighs, and the difference (the client's own bytes per image)."""
    if len(ns) < 2:
        return {}
    lo, hi = ns[0], ns[-1]
    wl_lo, wl_hi = workload.get(lo, {}), workload.get(hi, {})
    if "manifest_bytes" in wl_lo and "manifest_bytes" in wl_hi:
        manifest = (wl_hi["manifest_bytes"] - wl_lo["manifest_bytes"]) / (hi - lo)
    elif "manifest_bytes" in wl_hi:
        manifest = wl_hi["manifest_bytes"] / hi
    else:
        manifest = None
    out = {}
    for step in sorted(steps):
        if not step.startswith("ferry_"):
            continue
        a, b = steps[step].get(str(lo)), steps[step].get(str(hi))
        if not a or not b or a["peak_rss_kib"] is None or b["peak_rss_kib"] is None:
            continue
        per_image = (b["peak_rss_kib"] - a["peak_rss_kib"]) * 1024 / (hi - lo)
        out[step] = {
            "from_images": lo,
            "to_images": hi,
            "rss_bytes_per_image": round(per_image),
            "manifest_bytes_per_image": None if manifest is None else round(manifest),
            "beyond_manifests_bytes_per_image": None if manifest is None else round(per_image - manifest),
        }
    return out




def summarize(rows):
    """The summary of the scale rows (None if there is no timed row)."""
    timed, workload, notes = parse(rows)
    if not timed:
        return None
    ns = sorted({n for (_, n) in timed})
    steps = {}
    for (step, n), runs in sorted(timed.items()):
        steps.setdefault(step, {})[str(n)] = step_summary(runs, n)

    def wall(step, n):
        return steps.get(step, {}).get(str(n), {}).get("median_wall_s")

    ratios = {}
    for ferry, skopeo in PAIRS:
        if not skopeo:
            continue
        key = ferry.replace("ferry_", "")
        ratios[key] = {
            str(n): r2(wall(skopeo, n) / wall(ferry, n))
            for n in ns
            if wall(skopeo, n) is not None and wall(ferry, n)
        }
    # How the cost per image grows from the smallest to the largest N (1.0: flat).
    flatness = {}
    if len(ns) >= 2:
        for step, by_n in steps.items():
            have = [n for n in ns if by_n.get(str(n), {}).get("s_per_1000_images")]
            if len(have) >= 2:
                flatness[step] = {
                    "from_images": have[0],
                    "to_images": have[-1],
                    "growth": r2(by_n[str(have[-1])]["s_per_1000_images"] / by_n[str(have[0])]["s_per_1000_images"]),
                }
    memory = memory_growth(steps, workload, ns)

    wanted = [
        (f"scale: export vs skopeo sync at {RATIO_N} images", "skopeo_sync_export / ferry_export wall",
         ratios.get("export", {}).get(str(RATIO_N)), ">=", RATIO_TARGET),
        (f"scale: import vs skopeo sync at {RATIO_N} images", "skopeo_sync_import / ferry_import wall",
         ratios.get("import", {}).get(str(RATIO_N)), ">=", RATIO_TARGET),
        (f"scale: no-op re-import of {REIMPORT_N} images", "ferry_reimport median wall s",
         wall("ferry_reimport", REIMPORT_N), "<", REIMPORT_TARGET_S),
        (f"scale: ferry lock of {LOCK_N} images", "ferry_lock median wall s",
         wall("ferry_lock", LOCK_N), "<", LOCK_TARGET_S),
    ]
    beyond = {s: m["beyond_manifests_bytes_per_image"] for s, m in memory.items()
              if m["beyond_manifests_bytes_per_image"] is not None}
    if beyond:
        worst = max(beyond, key=beyond.get)
        m = memory[worst]
        wanted.append((
            "scale: memory per image beyond its manifest",
            f"bytes of peak RSS per image, N={m['from_images']}..{m['to_images']}, less "
            f"{m['manifest_bytes_per_image']} B of manifest (worst step: {worst})",
            beyond[worst], "<", BYTES_PER_IMAGE_TARGET))
    targets = [
        {"name": name, "metric": metric, "value": v, "op": op, "target": t, "pass": passes(v, op, t)}
        for (name, metric, v, op, t) in wanted
        if v is not None
    ]
    return {
        "images": ns,
        "workload": {str(n): workload[n] for n in sorted(workload)},
        "steps": steps,
        "ratios_skopeo_over_ferry": ratios,
        "per_image_growth": flatness,
        "memory_per_image": memory,
        "targets": targets,
        "notes": notes,
    }




def table(summary):
    """The scale phase as text lines: each step, ferry against skopeo, at each N."""
    if not summary:
        return []
    steps = summary["steps"]
    lines = [
        "scale: N small images in N repositories from a TLS + token-auth registry; median of runs "
        "(peak RSS: median of the runs' peaks)",
        "",
    ]
    row = "{:<10}{:>6}{:>6} |{:>9}{:>8}{:>9}{:>8}{:>8}{:>7} |{:>9}{:>8}{:>9}{:>7} | {:>8}"
    lines.append(row.format("step", "N", "runs", "ferry s", "s/1k", "RSS MiB", "CPU s", "reg CPU", "tokens",
                            "skopeo s", "s/1k", "RSS MiB", "tokens", "sk/ferry"))
    for ferry, skopeo in PAIRS:
        for n in summary["images"]:
            f = steps.get(ferry, {}).get(str(n))
            s = steps.get(skopeo, {}).get(str(n)) if skopeo else None
            if not f and not s:
                continue
            f = f or {}
            s = s or {}
            ratio = summary["ratios_skopeo_over_ferry"].get(ferry.replace("ferry_", ""), {}).get(str(n))
            runs = f"{f.get('runs', 0)}/{s['runs']}" if s else str(f.get("runs", 0))
            lines.append(row.format(
                ferry.replace("ferry_", ""), n, runs,
                dash(f.get("median_wall_s")), dash(f.get("s_per_1000_images")), dash(f.get("peak_rss_mib")),
                dash(f.get("median_cpu_s")), dash(f.get("median_registry_cpu_s")), dash(f.get("token_requests")),
                dash(s.get("median_wall_s")), dash(s.get("s_per_1000_images")), dash(s.get("peak_rss_mib")),
                dash(s.get("token_requests")), dash(ratio)))
    growth = summary["per_image_growth"]
    if growth:
        lines.append("")
        parts = [f"{step} x{g['growth']} ({g['from_images']}->{g['to_images']})" for step, g in sorted(growth.items())]
        lines.append("seconds per 1,000 images, largest N over smallest (1.0 = flat): " + "  ".join(parts))
    mem = summary["memory_per_image"]
    if mem:
        lines.append("")
        m0 = next(iter(mem.values()))
        lines.append(f"peak RSS per extra image, N={m0['from_images']}..{m0['to_images']} "
                     f"(manifest: {dash(m0['manifest_bytes_per_image'])} B per image): "
                     + "  ".join(f"{step} {m['rss_bytes_per_image']} B ({dash(m['beyond_manifests_bytes_per_image'])} beyond)"
                                 for step, m in sorted(mem.items())))
    lines += [f"note: {n}" for n in summary["notes"]]
    return lines
