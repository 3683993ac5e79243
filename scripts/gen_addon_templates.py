#!/usr/bin/env python3
"""Writes crates/ferry-rke/data/addon-templates.json, the compact dataset ferry embeds, from
tests/data/addon-templates.json (the reference extraction of RKE v1.6.3 and KDM release-v2.9,
see its ADDON-TEMPLATES.md): the v2.9 `ranges`, each template's `addon` and `fields`, and
`var_to_field` and `conditions` (what a KDM data.json's template text needs to be read).

    scripts/gen_addon_templates.py          # write
    scripts/gen_addon_templates.py --check  # exit 1 if the embedded file differs

The unit test `addons::tests::embedded_matches_reference` checks the same thing in Rust."""
import json, pathlib, sys

root = pathlib.Path(__file__).resolve().parents[1]
ref = json.load(open(root / "tests/data/addon-templates.json"))
ds = ref["datasets"]["kdm_v2.9"]
out = {
    "format": "ferry-addon-templates/1",
    "from": "addon-templates.json datasets.kdm_v2.9 (KDM %s, RKE %s)"
    % (ds["source"]["commit"][:8], ref["rke"]["tag"]),
    "var_to_field": ref["var_to_field"],
    "conditions": {k: v["template"] for k, v in ref["conditions"].items()},
    "ranges": ds["ranges"],
    "templates": {k: {"addon": t["addon"], "fields": t["fields"]} for k, t in ds["templates"].items()},
}
text = json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n"
dest = root / "crates/ferry-rke/data/addon-templates.json"
if "--check" in sys.argv:
    if dest.read_text() != text:
        sys.exit(f"{dest} is stale: run scripts/gen_addon_templates.py")
    print("up to date")
else:
    dest.write_text(text)
    print(f"wrote {dest} ({len(text)} bytes)")
