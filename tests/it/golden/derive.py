#!/usr/bin/env python3
"""Independent derivation of golden lists (not ferry): reads data/system-images.json and
applies RKE's --system-images rules (struct order, Windows pause dropped, empty skipped, first
occurrence kept per version). Used to write all-current.txt and all-current-unique.txt; the
single-version goldens beside it were written by hand and this script must agree with them."""
import json, pathlib, sys
root = pathlib.Path(__file__).resolve().parents[3]
d = json.load(open(root / "data/system-images.json"))
fields = [f["json"] for f in d["system_image_fields"] if f["json"] != "windowsPodInfraContainer"]
def lst(v):
    out = []
    for f in fields:
        i = d["k8s_version_rke_system_images"][v].get(f, "")
        if i and i not in out:
            out.append(i)
    return out
here = pathlib.Path(__file__).parent
for v in ["v1.8.11-rancher2-1", "v1.17.17-rancher2-3", "v1.30.5-rancher1-1"]:
    assert (here / f"{v}.txt").read_text().splitlines() == lst(v), v
cur = d["rke_release"]["k8s_versions_current"]
allv = [i for v in cur for i in lst(v)]
if "--write" in sys.argv:
    (here / "all-current.txt").write_text("".join(i + "\n" for i in allv))
    (here / "all-current-unique.txt").write_text("".join(i + "\n" for i in sorted(set(allv))))
print(len(allv), len(set(allv)))
