#!/usr/bin/env bash
# ferry end to end, on one machine, offline:
#   1. a local stand-in for Docker Hub (CNCF distribution, TLS + token auth like
#      auth.docker.io) holding deterministic RKE-named images (multi-arch, shared layers);
#   2. a private registry inside the "air gap" (TLS + htpasswd) under a path prefix;
#   3. a cluster.yml pointing at it (is_default, user, password);
#   4. ferry images -> lock -> export -> verify (offline) -> import --cluster -> verify (registry);
#   5. skopeo pulls the images from the private registry under the names rke up will use.
# Everything listens on 127.0.0.1; nothing leaves the machine. Work files: demo-work/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${DEMO_DIR:-$ROOT/demo-work}
mkdir -p "$WORK"
cd "$ROOT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

need=()
for pair in docker-registry:docker-registry skopeo:skopeo jq:jq; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "build ferry and the local registry launcher (release)"
cargo build --release --quiet --bin ferry --example bench_env
FERRY=$ROOT/target/release/ferry
ENV=$ROOT/target/release/examples/bench_env

step "a local 'Docker Hub' with RKE-named images (generated once, deterministic)"
"$ENV" generate --dir "$WORK/hub" --scale small

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
rm -f "$WORK/hub.json" "$WORK/private.json"
"$ENV" serve --dir "$WORK/hub" --auth tls-token --port-file "$WORK/hub.json" --parent-pid $$ >/dev/null &
pids+=($!)
rm -rf "$WORK/private-storage"
"$ENV" serve --storage "$WORK/private-storage" --auth tls-htpasswd --port-file "$WORK/private.json" --parent-pid $$ >/dev/null &
pids+=($!)
for f in hub private; do
  for _ in $(seq 100); do [ -s "$WORK/$f.json" ] && break; sleep 0.1; done
  [ -s "$WORK/$f.json" ] || { echo "the $f registry did not start" >&2; exit 1; }
done
HUB=$(jq -r .url "$WORK/hub.json"); HUB_CA=$(jq -r .ca_file "$WORK/hub.json")
PRIV=$(jq -r .host "$WORK/private.json"); PRIV_CA=$(jq -r .ca_file "$WORK/private.json")
PRIV_USER=$(jq -r .username "$WORK/private.json"); PRIV_PASS=$(jq -r .password "$WORK/private.json")
echo "Docker Hub stand-in: $HUB (token auth, anonymous pulls)"
echo "private registry:    https://$PRIV/rke (htpasswd user $PRIV_USER)"

step "cluster.yml: the private registry is the default one"
cat > "$WORK/cluster.yml" <<YML
kubernetes_version: v1.30.5-rancher1-1
nodes:
  - address: 10.0.0.10
    user: rke
    role: [controlplane, etcd, worker]
private_registries:
  - url: $PRIV/rke
    user: $PRIV_USER
    password: $PRIV_PASS
    is_default: true
YML
sed "s/password: .*/password: <hidden>/" "$WORK/cluster.yml"

step "what rke up will pull (first lines)"
run "$FERRY" images --cluster "$WORK/cluster.yml" | head -5

step "on the internet side: lock and export"
run "$FERRY" lock --images "$WORK/hub/images.txt" --upstream "docker.io=$HUB" --ca-file "$HUB_CA" -o "$WORK/images.lock"
run "$FERRY" export --lock "$WORK/images.lock" --upstream "docker.io=$HUB" --ca-file "$HUB_CA" -o "$WORK/rke-images.tar"
run "$FERRY" verify "$WORK/rke-images.tar" | tail -3

step "inside the air gap: import into the cluster's registry"
run "$FERRY" import "$WORK/rke-images.tar" --cluster "$WORK/cluster.yml" --ca-file "$PRIV_CA"

step "the images are pullable under the names rke up uses"
mkdir -p "$WORK/certs" && cp "$PRIV_CA" "$WORK/certs/ca.crt"
for img in $(head -3 "$WORK/hub/images.txt"); do
  ref="$PRIV/rke/$img"
  got=sha256:$(skopeo inspect --raw --cert-dir "$WORK/certs" --creds "$PRIV_USER:$PRIV_PASS" "docker://$ref" | sha256sum | cut -d' ' -f1)
  locked=$(awk -v n="$img" '$0 == "- name: " n {f=1; next} f && /^  digest:/ {print $2; exit}' "$WORK/images.lock")
  [ "$got" = "$locked" ] && verdict="= images.lock" || { verdict="!= images.lock ($locked)"; status=1; }
  echo "skopeo inspect docker://$ref -> $got $verdict"
done
[ "${status:-0}" = 0 ] || { echo "digests differ" >&2; exit 1; }

step "re-import is a no-op"
run "$FERRY" import "$WORK/rke-images.tar" --cluster "$WORK/cluster.yml" --ca-file "$PRIV_CA"

step "prove the mirror complete"
run "$FERRY" verify "$WORK/rke-images.tar" --cluster "$WORK/cluster.yml" --ca-file "$PRIV_CA" | tail -3
echo
echo "done: every image of the lock is in https://$PRIV/rke at the same digest, every platform, every blob."
