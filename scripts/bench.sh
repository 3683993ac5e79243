#!/usr/bin/env bash
# Benchmark of `ferry export` and `ferry import` (not a test): a large deterministic workload of
# RKE-named images (examples/bench_env.rs) served by a local TLS + token-auth registry (CNCF
# distribution and the integration-test token server), and in the same run, on the same images:
#
#   ferry_export   ferry export --images images.txt -o bundle.tar
#   skopeo_copy    skopeo copy --all of each image into ONE OCI layout (rewrites Docker types)
#   skopeo_sync    skopeo sync --all --preserve-digests into a dir: (digest-preserving, no dedup)
#   curl_floor     one bearer token, then every unique blob with curl, N in parallel, each
#                  written and fsynced (as ferry and skopeo do); optional phases curl_files
#                  (no fsync) and curl_null (to /dev/null) show the write and network costs
#   ferry_big      (BENCH_BIG=1) ferry export of an image with a 1 GiB layer: the RSS check
#
# and the import side, each run into a FRESH empty TLS + htpasswd registry (basic auth):
#
#   ferry_import        ferry import bundle.tar --to HOST --ca-file CA (credentials from a
#                       DOCKER_CONFIG config.json); the bundle of ferry_export
#   skopeo_import_oci   skopeo copy --all oci:LAYOUT:REF docker://HOST/REF, one process per image,
#                       from skopeo_copy's OCI layout (pushes skopeo's rewritten digests)
#   skopeo_import_sync  skopeo sync --all --preserve-digests --scoped --src dir --dest docker from
#                       skopeo_sync's dir (regrouped by namespace: sync drops it otherwise)
#   ferry_reimport      ferry import again into a registry that already holds everything
#                       (BENCH_REIMPORT_RUNS times per run): the no-op
#   skopeo_reimport     skopeo sync --src dir into that same full registry (the same digests:
#                       skopeo's no-op in one process)
#   skopeo_reimport_oci the skopeo copy loop from the OCI layout into a registry that already
#                       holds what that loop pushes
# and the serving side (phase `serve`): the bundle served by `ferry serve` (TLS + htpasswd,
# straight from the tar) against the same images served by CNCF distribution (TLS + htpasswd,
# its filesystem storage filled by `ferry import`), each started fresh for every measurement
# and loaded by BENCH_SERVE_CLIENTS concurrent clients (examples/pull_load.rs: each client a
# node with its own connections, pulling whole images, 3 blobs at a time). Every measurement
# pulls the workload BENCH_SERVE_PULLS times in all (the clients share the list), so the
# totals match across client counts. Recorded as serve_ferry_cN / serve_dist_cN: MB/s,
# manifest GET latency p50/p99 as the clients see it and as a probe thread of its own sees
# it (the clients' figure includes their own CPU queueing on a small machine), errors, the
# server's CPU and peak RSS (VmHWM).
# and upgrades (phase `delta`): the workload as two releases — "old" without rke-tools
# v0.1.103, hyperkube v1.30.5 and pause 3.7, "new" without their older versions — the full
# new bundle against a delta of it (--since old.lock), each exported (delta_export_full,
# delta_export) and imported (delta_import_full into an empty registry, delta_import into one
# holding the old release); sizes as bytes_written.
# and archives (phase `archive`): the workload as `rancher-images.tar.gz`, made the way
# rancher-save-images.sh makes it (a real Docker Engine pulls every image, then
# `docker save … | gzip`; untimed, once), imported into a fresh TLS + htpasswd registry by
# `ferry import` (archive_ferry) and the way rancher-load-images.sh does it (archive_docker:
# `docker load`, then `docker tag` + `docker push` per image, from an engine with no images);
# the extra disk each needs is recorded (ferry's spool; the engine's data-root growth).
# and signatures (phase `signed`): every image of the workload signed as `cosign sign --key`
# does (scripts/bench_sign.py, python3-cryptography), exported with its signatures
# (signed_export) and with --remove-signatures (signed_export_nosig), each bundle imported
# (signed_import, signed_import_nosig), and `ferry verify --key` of the signed bundle
# (signed_verify); the cost of carrying signatures is the ratio of the two.
# An import phase whose source (bundle, OCI layout, sync dir) was not produced by its export
# phase in this run produces it once, untimed. For every timed command the CPU seconds of the
# registry process on the other end (the upstream for export, the target for import) are
# measured too (/proc/PID/stat): on 2 CPUs the registry is often the bottleneck.
#
# Each timed run is cold: outputs and skopeo's blob-info cache are deleted and `sync` flushes
# earlier writes first. The page cache is not dropped (not possible on these shared machines),
# so the registry always reads its storage from RAM: the numbers measure the clients, TLS and
# the disk writes, not the registry's disk reads.
#
# Usage:
#   scripts/bench.sh [--quick] [--strict]
#     --quick    small workload (~110 MB) and 1 run: a smoke check (the targets are for the
#                full workload and mean little here)
#     --strict   exit 3 when a target is missed
# Environment:
#   BENCH_DIR           work dir (default: bench-work/ in the repository; gitignored)
#   BENCH_RUNS          timed runs per phase (default 3; --quick: 1); the median is reported
#   BENCH_REIMPORT_RUNS timed no-op re-imports per run of the *_reimport phases (default 5)
#   BENCH_BIG=1         also run ferry_big (generates one extra 1 GiB layer once)
#   BENCH_BIG_GB        size of that layer in GiB (default 1)
#   BENCH_PHASES        phases to run (default "ferry_export ferry_inspect skopeo_copy skopeo_sync curl_floor
#                       ferry_import skopeo_import_oci skopeo_import_sync ferry_reimport
#                       skopeo_reimport skopeo_reimport_oci serve delta archive signed"; also
#                       available: curl_files curl_null)
#   BENCH_SERVE_CLIENTS client counts of the serve phase (default "8 32")
#   BENCH_SERVE_PULLS   times the serve phase pulls the workload per measurement (default 8)
#   BENCH_JOBS          ferry --jobs (default: ferry's own default)
#   BENCH_CURL_PARALLEL parallel curl processes for the floor (default 8)
#   BENCH_NO_BUILD=1    use the binaries already in target/release
#
# Output: a table on stdout and the same as JSON in $BENCH_DIR/results-<date>.json; the
# workload in $BENCH_DIR/workload-{small,full}/ (kept, generated once), logs of every timed
# command in $BENCH_DIR/run-<date>/logs/ (untimed preparations: logs/prepare-*).
#
# Adding a phase: write `phase_NAME RUN` that prepares a cold state, calls `timed NAME RUN CMD…`
# (wall, CPU, peak RSS and the registry's CPU go to runs.tsv) and checks the result; then add
# NAME to BENCH_PHASES (and, if it has a target, to scripts/bench_report.py). A fresh TLS + htpasswd
# registry comes from `start_target NAME` (fields from `reg NAME url` etc., its process in
# REG_PROC[NAME]); `stop_registry NAME` ends it and deletes its storage.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
STRICT=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --strict) STRICT=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *)
      echo "bench.sh: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

BENCH_DIR=${BENCH_DIR:-$ROOT/bench-work}
if ((QUICK)); then
  SCALE=small
  RUNS=1
else
  SCALE=full
  RUNS=${BENCH_RUNS:-3}
fi
BIG=${BENCH_BIG:-0}
BIG_GB=${BENCH_BIG_GB:-1}
PHASES=${BENCH_PHASES:-ferry_export ferry_inspect skopeo_copy skopeo_sync curl_floor ferry_import skopeo_import_oci skopeo_import_sync ferry_reimport skopeo_reimport skopeo_reimport_oci serve delta archive signed}
SERVE_CLIENTS=${BENCH_SERVE_CLIENTS:-8 32}
SERVE_PULLS=${BENCH_SERVE_PULLS:-8}
REIMPORT_RUNS=${BENCH_REIMPORT_RUNS:-5}
CURL_PARALLEL=${BENCH_CURL_PARALLEL:-8}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

FERRY=$ROOT/target/release/ferry
BENCH_ENV=$ROOT/target/release/examples/bench_env
PULL_LOAD=$ROOT/target/release/examples/pull_load
WORKLOAD=$BENCH_DIR/workload-$SCALE
WORK=$BENCH_DIR/run-$STAMP # scratch of this run: outputs, logs, configs
RUNS_TSV=$WORK/runs.tsv
SRC=$WORK/src          # export outputs kept as import sources: bundle.tar, oci/, sync/
BUNDLE=$SRC/bundle.tar # ferry's bundle
OCI=$SRC/oci           # skopeo's OCI layout (skopeo_copy)
SYNCDIR=$SRC/sync      # skopeo sync's dirs, as NAMESPACE/NAME:TAG
CLK_TCK=$(getconf CLK_TCK)
NOTES=()

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Every server is on 127.0.0.1: make sure no proxy setting sends loopback traffic elsewhere,
# and that no credentials or settings of the caller leak into the tools.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy RUST_LOG SSL_CERT_FILE SSL_CERT_DIR
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(FERRY_|DOCKER_|CONTAINERS_|REGISTRY_)' || true)
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

# ---- setup ---------------------------------------------------------------------------------

ensure_tools() {
  local need=() pair
  # command:package; /usr/bin/time must be GNU time (for -v), not the shell keyword.
  for pair in /usr/bin/time:time skopeo:skopeo curl:curl jq:jq docker-registry:docker-registry htpasswd:apache2-utils openssl:openssl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
  done
  if ((${#need[@]})); then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  command -v cargo >/dev/null || die "cargo not found"
  # The signed phase signs the workload with python3-cryptography (scripts/bench_sign.py).
  if selected signed && ! python3 -c 'import cryptography' 2>/dev/null; then
    log "installing python3 cryptography"
    python3 -m pip install --quiet cryptography ||
      python3 -m pip install --quiet --break-system-packages cryptography
  fi
}

build() {
  if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
    [ -x "$FERRY" ] && [ -x "$BENCH_ENV" ] && [ -x "$PULL_LOAD" ] ||
      die "BENCH_NO_BUILD=1 but target/release/{ferry,examples/bench_env,examples/pull_load} missing"
    return
  fi
  log "building ferry and the bench_env and pull_load examples (release)"
  cargo build --release --quiet --bin ferry --example bench_env --example pull_load
}

generate() {
  local big=0
  [ "$BIG" = 1 ] && big=$BIG_GB
  log "workload: $SCALE in $WORKLOAD (generated once; reused when up to date)"
  if ! "$BENCH_ENV" generate --dir "$WORKLOAD" --scale "$SCALE" --big-layer-gb "$big" \
    >"$WORK/workload.json" 2>"$WORK/logs/generate.err"; then
    cat "$WORK/logs/generate.err" >&2
    die "generating the workload failed"
  fi
  grep -v '^  ' "$WORK/logs/generate.err" | sed 's/^/    /' >&2 || true
  UNIQUE_BYTES=$(jq .unique_bytes "$WORK/workload.json")
  UNIQUE_BLOBS=$(jq .unique_blobs "$WORK/workload.json")
  N_IMAGES=$(jq .images "$WORK/workload.json")
  IMAGES_TXT=$WORKLOAD/images.txt
  BLOBS_TXT=$WORKLOAD/blobs.txt
  log "workload: $N_IMAGES images, $UNIQUE_BLOBS unique blobs, $(mb "$UNIQUE_BYTES") MB unique," \
    "$(mb "$(jq .bytes_without_dedup "$WORK/workload.json")") MB counted per image"
}

SERVE_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVE_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  # Outputs of an interrupted or failed phase, import sources and target registries' storage
  # can be gigabytes; the logs stay.
  rm -rf "$WORK/out" "$SRC" "$WORK/targets" "$WORK/serve-dist" "$WORK/engine"
  local t
  for t in "${TRUSTED[@]}"; do
    rm -rf "$t"
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_registry NAME AUTH [serve options…]: a registry (killed on exit) whose JSON info line
# lands in $WORK/registry-NAME.json; read it with `reg NAME FIELD`.
start_registry() {
  local name=$1 auth=$2
  shift 2
  local info=$WORK/registry-$name.json
  "$BENCH_ENV" serve --auth "$auth" --port-file "$info" --parent-pid $$ "$@" \
    >"$WORK/logs/registry-$name.out" 2>"$WORK/logs/registry-$name.err" &
  local pid=$!
  SERVE_PIDS+=("$pid")
  SERVE_PID[$name]=$pid
  local i
  for i in $(seq 1 300); do
    [ -s "$info" ] && break
    kill -0 "$pid" 2>/dev/null || die "registry $name did not start: $(cat "$WORK/logs/registry-$name.err")"
    sleep 0.1
  done
  [ -s "$info" ] || die "registry $name not ready after 30 s"
  REG_PROC[$name]=$(registry_process "$pid")
  log "registry $name ($auth): $(reg "$name" url), docker-registry pid ${REG_PROC[$name]}"
}
reg() { jq -r --arg f "$2" '.[$f] // empty' "$WORK/registry-$1.json"; }
declare -A SERVE_PID=() REG_PROC=()

# registry_process SERVE_PID: the docker-registry child of a `bench_env serve` (whose CPU time
# is measured around each timed command); empty if not found.
registry_process() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = docker-registry ]; then
      echo "$c"
      return
    fi
  done
}

# stop_registry NAME: ends the registry (bench_env stops docker-registry and removes its temp
# dir) and deletes its storage if it is an import target under $WORK/targets.
stop_registry() {
  local name=$1 pid=${SERVE_PID[$1]} p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${SERVE_PIDS[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  SERVE_PIDS=("${keep[@]}")
  unset "SERVE_PID[$name]" "REG_PROC[$name]"
  rm -rf "${WORK:?}/targets/$name"
}

# start_target NAME: a fresh, empty TLS + htpasswd registry as an import target, with a
# DOCKER_CONFIG dir for ferry ($WORK/docker-NAME, `auths` keyed by its HOST) and the skopeo
# credentials in TARGET_CREDS[NAME].
declare -A TARGET_CREDS=()
start_target() {
  local name=$1 storage=$WORK/targets/$1
  rm -rf "$storage" && mkdir -p "$storage"
  start_registry "$name" tls-htpasswd --storage "$storage"
  [ -n "${REG_PROC[$name]}" ] || die "no docker-registry process under registry $name"
  local user pass
  user=$(reg "$name" username)
  pass=$(reg "$name" password)
  TARGET_CREDS[$name]="$user:$pass"
  mkdir -p "$WORK/docker-$name"
  jq -n --arg h "$(reg "$name" host)" --arg a "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" \
    '{auths: {($h): {auth: $a}}}' >"$WORK/docker-$name/config.json"
}

# Client configuration for the upstream registry: ferry reads DOCKER_CONFIG/config.json,
# skopeo gets --src-creds / a sync YAML, curl a bearer token. All use the user and password.
setup_clients() {
  UP_URL=$(reg upstream url)
  UP_HOST=$(reg upstream host)
  UP_CA=$(reg upstream ca_file)
  UP_CERT_DIR=$(reg upstream cert_dir)
  UP_USER=$(reg upstream username)
  UP_PASS=$(reg upstream password)
  mkdir -p "$WORK/docker"
  jq -n --arg h "$UP_HOST" --arg a "$(printf '%s:%s' "$UP_USER" "$UP_PASS" | base64 -w0)" \
    '{auths: {($h): {auth: $a}}}' >"$WORK/docker/config.json"
  # skopeo: no auth file of the caller, no policy file needed.
  export REGISTRY_AUTH_FILE=$WORK/no-auth.json
  SKOPEO=(skopeo --insecure-policy --command-timeout=1800s)

  # sync YAML: every repository with its tags.
  {
    echo "$UP_HOST:"
    echo "  images:"
    sed 's/:\([^:]*\)$/ \1/' "$IMAGES_TXT" | sort -k1,1 -s | awk '
      $1 != prev { print "    " $1 ":"; prev = $1 }
      { print "      - \"" $2 "\"" }'
    echo "  credentials:"
    echo "    username: $UP_USER"
    echo "    password: $UP_PASS"
    echo "  cert-dir: $UP_CERT_DIR"
  } >"$WORK/sync.yaml"
}

# ---- measuring -----------------------------------------------------------------------------

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# Deletes skopeo's blob-info cache (as root it lives in /var/lib; rootless in XDG data home),
# so no run benefits from an earlier one knowing where blobs are.
clear_skopeo_cache() {
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    "${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb" 2>/dev/null || true
}

# proc_ticks PID: user + system CPU time of a process in clock ticks (0 if it is gone).
proc_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$1"/stat 2>/dev/null || echo 0
}

# timed PHASE RUN CMD…: runs CMD under GNU time; appends PHASE RUN WALL_S RSS_KIB CPU_S
# REG_CPU_S to runs.tsv. REG_CPU_S is the CPU time the registry process TIMED_REG_PID (default:
# the upstream's; `none`: no registry) used meanwhile. Stdout goes to logs/PHASE-RUN.out, stderr to .err. Writes of
# earlier phases are flushed first so they do not land in this timing. A failing command ends
# the benchmark.
timed() {
  local phase=$1 run=$2
  shift 2
  local base=$WORK/logs/$phase-$run
  local regpid=${TIMED_REG_PID:-${REG_PROC[upstream]:-}}
  [ "$regpid" = none ] && regpid="" # a phase without a registry
  sync
  local t0 t1 rc=0 r0=0 r1=0
  [ -n "$regpid" ] && r0=$(proc_ticks "$regpid")
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
  t1=$(date +%s%N)
  [ -n "$regpid" ] && r1=$(proc_ticks "$regpid")
  if [ "$rc" -ne 0 ]; then
    log "$phase run $run FAILED (exit $rc); last lines of $base.err:"
    tail -n 20 "$base.err" >&2
    exit 1
  fi
  local wall rss cpu regcpu=""
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$base.time")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$base.time")
  [ -n "$regpid" ] && regcpu=$(awk -v a="$r0" -v b="$r1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$run" "$wall" "$rss" "$cpu" "$regcpu" >>"$RUNS_TSV"
  log "$(printf '%-19s run %2d: %7.2f s  %6.1f MiB peak RSS  %6.2f s CPU  %6s s registry CPU' "$phase" "$run" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu" "${regcpu:--}")"
}

# untimed NAME CMD…: a preparation (an import source, a full registry), not measured; logs in
# logs/prepare-NAME.{out,err}. A failing command ends the benchmark.
untimed() {
  local name=$1
  shift
  local base=$WORK/logs/prepare-$name
  log "preparing $name (untimed)"
  "$@" >"$base.out" 2>"$base.err" || {
    log "preparing $name FAILED; last lines of $base.err:"
    tail -n 20 "$base.err" >&2
    exit 1
  }
}

selected() {
  local p
  for p in $PHASES; do
    [ "$p" = "$1" ] && return 0
  done
  return 1
}

# extra PHASE KEY VALUE: a fact about a phase for the JSON (bytes written, digests changed…).
extra() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/extra.tsv"; }

# ---- phases --------------------------------------------------------------------------------

# Command builders: set CMD to the command line of a tool run, shared by a timed phase and the
# untimed preparation of the same output as an import source.

ferry_jobs() { [ -n "${BENCH_JOBS:-}" ] && echo "--jobs $BENCH_JOBS" || true; }

# cmd_ferry_export TAR [HTTP]: HTTP is ferry's --http (1.1: a pool of connections, the
# default; 2: one multiplexed HTTP/2 connection per host).
cmd_ferry_export() {
  # shellcheck disable=SC2207
  local jobs=($(ferry_jobs))
  CMD=(env DOCKER_CONFIG="$WORK/docker"
    "$FERRY" export --images "$IMAGES_TXT" --upstream "docker.io=$UP_URL" --ca-file "$UP_CA"
    --http "${2:-1.1}" "${jobs[@]}" -o "$1" --json)
}

# cmd_skopeo_copy LAYOUT: one process per image (what a user's loop does); all into one layout.
cmd_skopeo_copy() {
  CMD=(bash -c '
    set -euo pipefail
    out=$1 host=$2 certs=$3 creds=$4 list=$5
    shift 5
    while read -r ref; do
      [ -n "$ref" ] || continue
      "$@" copy --all --src-cert-dir "$certs" --src-creds "$creds" "docker://$host/$ref" "oci:$out:$ref"
    done <"$list"' _ "$1" "$UP_HOST" "$UP_CERT_DIR" "$UP_USER:$UP_PASS" "$IMAGES_TXT" "${SKOPEO[@]}")
}

# cmd_skopeo_sync DIR
cmd_skopeo_sync() {
  CMD=("${SKOPEO[@]}" sync --all --preserve-digests --src yaml --dest dir "$WORK/sync.yaml" "$1")
}

# cmd_ferry_import TARGET [HTTP]: the bundle into registry TARGET (credentials from its
# config.json); HTTP as for cmd_ferry_export.
cmd_ferry_import() {
  # shellcheck disable=SC2207
  local jobs=($(ferry_jobs))
  CMD=(env DOCKER_CONFIG="$WORK/docker-$1"
    "$FERRY" import "$BUNDLE" --to "$(reg "$1" host)" --ca-file "$(reg "$1" ca_file)"
    --http "${2:-1.1}" "${jobs[@]}" --json)
}

# cmd_skopeo_import_oci TARGET: every image of the OCI layout, one process per image.
cmd_skopeo_import_oci() {
  CMD=(bash -c '
    set -euo pipefail
    oci=$1 host=$2 certs=$3 creds=$4 list=$5
    shift 5
    while read -r ref; do
      [ -n "$ref" ] || continue
      "$@" copy --all --dest-cert-dir "$certs" --dest-creds "$creds" "oci:$oci:$ref" "docker://$host/$ref"
    done <"$list"' _ "$OCI" "$(reg "$1" host)" "$(reg "$1" cert_dir)" "${TARGET_CREDS[$1]}" \
    "$IMAGES_TXT" "${SKOPEO[@]}")
}

# cmd_skopeo_import_sync TARGET: the sync dirs, NAMESPACE/NAME:TAG, to HOST/NAMESPACE/NAME:TAG
# (--scoped keeps the path below the source dir; without it only NAME:TAG would be kept).
cmd_skopeo_import_sync() {
  CMD=("${SKOPEO[@]}" sync --all --preserve-digests --scoped --src dir --dest docker
    --dest-cert-dir "$(reg "$1" cert_dir)" --dest-creds "${TARGET_CREDS[$1]}" "$SYNCDIR" "$(reg "$1" host)")
}

# ---- import sources ------------------------------------------------------------------------

needs_bundle() {
  selected ferry_import || selected ferry_import_h2 || selected ferry_reimport || selected serve ||
    selected ferry_verify || selected sha256_floor || selected ferry_inspect
}
needs_oci() { selected skopeo_import_oci || selected skopeo_reimport_oci; }
needs_syncdir() { selected skopeo_import_sync || selected skopeo_reimport; }

# nest_sync_dir FLAT: skopeo sync (without --scoped) writes FLAT/NAME:TAG, dropping the
# namespace (rancher/, noiro/); move each image to $SYNCDIR/NAMESPACE/NAME:TAG so that
# `sync --scoped --src dir` pushes it under its full name.
nest_sync_dir() {
  local flat=$1 ref repo tag
  rm -rf "$SYNCDIR" && mkdir -p "$SYNCDIR"
  while read -r ref; do
    [ -n "$ref" ] || continue
    repo=${ref%:*} tag=${ref##*:}
    mkdir -p "$SYNCDIR/$(dirname "$repo")"
    [ -f "$flat/${repo##*/}:$tag/manifest.json" ] || die "skopeo sync wrote no $flat/${repo##*/}:$tag"
    mv "$flat/${repo##*/}:$tag" "$SYNCDIR/$repo:$tag"
  done <"$IMAGES_TXT"
  rm -rf "$flat"
}

ensure_bundle() {
  [ -s "$BUNDLE" ] && return
  mkdir -p "$SRC"
  cmd_ferry_export "$BUNDLE"
  untimed bundle "${CMD[@]}"
}
ensure_oci() {
  [ -f "$OCI/index.json" ] && return
  mkdir -p "$SRC"
  rm -rf "$OCI"
  clear_skopeo_cache
  cmd_skopeo_copy "$OCI"
  untimed oci-layout "${CMD[@]}"
}
ensure_syncdir() {
  [ -d "$SYNCDIR" ] && return
  local flat=$WORK/out/skopeo-dir-prepare
  rm -rf "$flat" && mkdir -p "$flat"
  clear_skopeo_cache
  cmd_skopeo_sync "$flat"
  untimed sync-dir "${CMD[@]}"
  nest_sync_dir "$flat"
}

# ---- export phases -------------------------------------------------------------------------

# ferry_export_phase PHASE HTTP RUN
ferry_export_phase() {
  local phase=$1 http=$2 run=$3 out=$WORK/out/ferry
  rm -rf "$out" && mkdir -p "$out"
  cmd_ferry_export "$out/bundle.tar" "$http"
  timed "$phase" "$run" "${CMD[@]}"
  local s=$WORK/logs/$phase-$run.out
  [ "$(jq .exported "$s")" = "$N_IMAGES" ] && [ "$(jq '.failed | length' "$s")" = 0 ] ||
    die "ferry exported $(jq .exported "$s") of $N_IMAGES images"
  extra "$phase" bytes_written "$(stat -c %s "$out/bundle.tar")"
  if needs_bundle && [ ! -s "$BUNDLE" ]; then
    mkdir -p "$SRC" && mv "$out/bundle.tar" "$BUNDLE"
  fi
  rm -rf "$out"
}
phase_ferry_export() { ferry_export_phase ferry_export 1.1 "$1"; }
# The same over HTTP/2: every blob multiplexed on one connection (what ferry did before --http).
phase_ferry_export_h2() { ferry_export_phase ferry_export_h2 2 "$1"; }

phase_skopeo_copy() {
  local run=$1 out=$WORK/out/skopeo-oci
  rm -rf "$out" && mkdir -p "$(dirname "$out")"
  clear_skopeo_cache
  cmd_skopeo_copy "$out"
  timed skopeo_copy "$run" "${CMD[@]}"
  extra skopeo_copy bytes_written "$(du -sb "$out" | cut -f1)"
  extra skopeo_copy digests_changed "$(digests_changed_oci "$out")"
  if needs_oci; then
    mkdir -p "$SRC" && rm -rf "$OCI" && mv "$out" "$OCI"
  fi
  rm -rf "$out"
}

# digests_changed_oci LAYOUT: how many top-level digests skopeo changed (Docker types
# rewritten to OCI) in the layout's index against the workload.
digests_changed_oci() {
  local changed=0 ref repo tag want got
  while read -r ref; do
    repo=${ref%:*} tag=${ref##*:}
    want=$(cat "$WORKLOAD/storage/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link")
    got=$(jq -r --arg r "$ref" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$1/index.json")
    [ "$want" = "$got" ] || changed=$((changed + 1))
  done <"$IMAGES_TXT"
  echo "$changed"
}

phase_skopeo_sync() {
  local run=$1 out=$WORK/out/skopeo-dir
  rm -rf "$out" && mkdir -p "$out"
  clear_skopeo_cache
  cmd_skopeo_sync "$out"
  timed skopeo_sync "$run" "${CMD[@]}"
  local n
  n=$(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$n" = "$N_IMAGES" ] || die "skopeo sync wrote $n of $N_IMAGES images"
  extra skopeo_sync bytes_written "$(du -sb "$out" | cut -f1)"
  if needs_syncdir; then
    nest_sync_dir "$out"
  fi
  rm -rf "$out"
}

# The floor: what any client must do at least. One bearer token for every repository (several
# scope= in one request, as Docker Hub allows), then every unique blob with curl, biggest first,
# BENCH_CURL_PARALLEL at once. Modes:
#   fsync   (curl_floor, the reference) one curl per blob (per 16 blobs under 4 MiB), then
#           `sync FILE…`: every blob is durable when it is done, as ferry (fdatasync) and
#           skopeo (fsync) make them
#   files   (curl_files) no fsync; blobs dealt to BENCH_CURL_PARALLEL groups (least loaded
#           first), one curl per group over one kept-alive connection
#   null    (curl_null) like files, but the bytes go to /dev/null: the network alone
curl_fetch() {
  local phase=$1 run=$2 mode=$3 out=$WORK/out/curl
  rm -rf "$out" && mkdir -p "$out"
  local realm service scopes list=$WORK/curl-$mode.txt
  realm=$(reg upstream token_realm)
  service=$(reg upstream token_service)
  scopes=$(cut -d' ' -f1 "$BLOBS_TXT" | sort -u | sed 's|.*|\&scope=repository:&:pull|' | tr -d '\n')
  if [ "$mode" = fsync ]; then
    # A line per blob of 4 MiB or more; smaller ones 16 to a line (one connection, and no
    # process start per config blob).
    sort -k3,3nr "$BLOBS_TXT" | awk -v u="$UP_URL" -v o="$out" '
      { pair = u "/v2/" $1 "/blobs/" $2 " " o "/" $2 }
      $3 >= 4194304 { print pair; next }
      { batch = batch " " pair; if (++n == 16) { print batch; batch = ""; n = 0 } }
      END { if (n) print batch }' >"$list"
  else
    sort -k3,3nr "$BLOBS_TXT" | awk -v p="$CURL_PARALLEL" -v u="$UP_URL" -v null="$([ "$mode" = null ] && echo 1)" '
      { best = 0
        for (i = 1; i < p; i++) if (tot[i] < tot[best]) best = i
        tot[best] += $3
        line[best] = line[best] (null ? " -o /dev/null " : " ") u "/v2/" $1 "/blobs/" $2 }
      END { for (i = 0; i < p; i++) if (line[i] != "") print line[i] }' >"$list"
  fi
  timed "$phase" "$run" bash -c '
    set -euo pipefail
    out=$1 url=$2 par=$3 mode=$4 list=$5
    export CA=$6
    TOKEN=$(curl -sSf --cacert "$CA" -u "$7" "$url" | jq -r .token)
    export TOKEN
    case $mode in
      fsync) xargs -P "$par" -L 1 bash -c '\''
          args=() files=()
          while [ $# -gt 0 ]; do args+=(-o "$2" "$1"); files+=("$2"); shift 2; done
          curl -sSfL --cacert "$CA" -H "Authorization: Bearer $TOKEN" "${args[@]}" && sync "${files[@]}"'\'' _ <"$list" ;;
      files) xargs -P "$par" -L 1 curl -sSfL --cacert "$CA" -H "Authorization: Bearer $TOKEN" --remote-name-all --output-dir "$out" <"$list" ;;
      null) xargs -P "$par" -L 1 curl -sSfL --cacert "$CA" -H "Authorization: Bearer $TOKEN" <"$list" ;;
    esac' _ "$out" "$realm?service=$service$scopes" "$CURL_PARALLEL" "$mode" "$list" "$UP_CA" "$UP_USER:$UP_PASS"
  if [ "$mode" != null ]; then
    local n bytes
    n=$(find "$out" -type f | wc -l)
    bytes=$(find "$out" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }')
    [ "$n" = "$UNIQUE_BLOBS" ] && [ "$bytes" = "$UNIQUE_BYTES" ] ||
      die "curl fetched $n blobs, $bytes bytes; expected $UNIQUE_BLOBS, $UNIQUE_BYTES"
    extra "$phase" bytes_written "$bytes"
  fi
  rm -rf "$out"
}
phase_curl_floor() { curl_fetch curl_floor "$1" fsync; }
phase_curl_files() { curl_fetch curl_files "$1" files; }
phase_curl_null() { curl_fetch curl_null "$1" null; }

# ferry's peak RSS with one 1 GiB layer (BENCH_BIG=1).
phase_ferry_big() {
  local run=$1 out=$WORK/out/ferry-big
  rm -rf "$out" && mkdir -p "$out"
  timed ferry_big "$run" env DOCKER_CONFIG="$WORK/docker" \
    "$FERRY" export --images "$WORKLOAD/images-big.txt" --upstream "docker.io=$UP_URL" \
    --ca-file "$UP_CA" -o "$out/bundle.tar" --json
  [ "$(jq .exported "$WORK/logs/ferry_big-$run.out")" = 1 ] || die "ferry did not export the big image"
  extra ferry_big bytes_written "$(stat -c %s "$out/bundle.tar")"
  rm -rf "$out"
}

# ---- import phases -------------------------------------------------------------------------

# check_target NAME MODE PHASE [nobytes]: every image of the workload is tagged in registry NAME's storage;
# MODE exact: with the workload's digest (digest-preserving tools); any: with any digest (the
# number that differ goes to the JSON as digests_changed). Also records the bytes stored.
check_target() {
  local name=$1 mode=$2 phase=$3 storage=$WORK/targets/$1 ref repo tag link want changed=0
  while read -r ref; do
    [ -n "$ref" ] || continue
    repo=${ref%:*} tag=${ref##*:}
    link=$storage/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link
    [ -s "$link" ] || die "$phase: $ref is not in the target registry $name"
    want=$(cat "$WORKLOAD/storage/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link")
    if [ "$(cat "$link")" != "$want" ]; then
      [ "$mode" = any ] || die "$phase: $ref has digest $(cat "$link") in $name, the workload $want"
      changed=$((changed + 1))
    fi
  done <"$IMAGES_TXT"
  [ "$mode" = any ] && extra "$phase" digests_changed "$changed"
  [ "${4:-}" = nobytes ] || extra "$phase" bytes_written "$(du -sb "$storage/docker/registry/v2/blobs" | cut -f1)"
  return 0
}

# check_ferry_import PHASE RUN: ferry's JSON summary says every image is there, none failed;
# for a re-import also that nothing was pushed.
check_ferry_import() {
  local s=$WORK/logs/$1-$2.out
  [ "$(jq '.failed | length' "$s")" = 0 ] || die "$1: ferry import failed: $(jq -c .failed "$s")"
  [ "$(jq '.pushed + .already_present' "$s")" = "$N_IMAGES" ] ||
    die "$1: ferry import pushed $(jq .pushed "$s"), found $(jq .already_present "$s") of $N_IMAGES images"
  if [ "$1" = ferry_reimport ]; then
    [ "$(jq '.pushed + .blobs_pushed + .blobs_mounted' "$s")" = 0 ] ||
      die "$1: not a no-op: $(jq -c '{pushed, blobs_pushed, blobs_mounted}' "$s")"
  fi
}

# The registries the re-import phases run against, once filled (by the first import run of the
# matching tool, kept running, or by an untimed preparation): FULL_FERRY holds what ferry
# pushes (the workload's digests, which skopeo sync --preserve-digests pushes too),
# FULL_OCI what the skopeo copy loop from the OCI layout pushes.
FULL_FERRY=""
FULL_OCI=""

phase_ferry_import() {
  local run=$1 name=ferry-import-$1
  ensure_bundle
  start_target "$name"
  cmd_ferry_import "$name"
  TIMED_REG_PID=${REG_PROC[$name]} timed ferry_import "$run" "${CMD[@]}"
  check_ferry_import ferry_import "$run"
  check_target "$name" exact ferry_import
  if [ -z "$FULL_FERRY" ] && { selected ferry_reimport || selected skopeo_reimport; }; then
    FULL_FERRY=$name
  else
    stop_registry "$name"
  fi
}

# The same over HTTP/2 (distribution negotiates h2 over TLS).
phase_ferry_import_h2() {
  local run=$1 name=ferry-import-h2-$1
  ensure_bundle
  start_target "$name"
  cmd_ferry_import "$name" 2
  TIMED_REG_PID=${REG_PROC[$name]} timed ferry_import_h2 "$run" "${CMD[@]}"
  check_ferry_import ferry_import_h2 "$run"
  check_target "$name" exact ferry_import_h2
  stop_registry "$name"
}

# ---- offline verify ------------------------------------------------------------------------

# ferry verify BUNDLE, offline: the structure, every blob re-hashed (on every core), every
# image complete. No registry takes part.
phase_ferry_verify() {
  local run=$1
  ensure_bundle
  TIMED_REG_PID=none timed ferry_verify "$run" "$FERRY" verify "$BUNDLE" --json
  [ "$(jq .complete "$WORK/logs/ferry_verify-$run.out")" = true ] || die "ferry verify: bundle not complete"
}

# ferry inspect BUNDLE: what the bundle holds, from its index, lock and manifests through the
# reader's offset table, nothing hashed; its cost is the tar headers and the manifests, not the
# layer bytes. Target < 0.5 s on the full workload.
phase_ferry_inspect() {
  local run=$1
  ensure_bundle
  TIMED_REG_PID=none timed ferry_inspect "$run" "$FERRY" inspect "$BUNDLE" --json
  [ "$(jq '.totals.images' "$WORK/logs/ferry_inspect-$run.out")" = "$N_IMAGES" ] ||
    die "ferry inspect: $(jq '.totals.images' "$WORK/logs/ferry_inspect-$run.out") of $N_IMAGES images"
}

# The hashing limit: `openssl dgst -sha256` of every blob, the largest first, one process per
# blob on each of the $(nproc) cores, from files extracted from the same bundle (untimed; both
# read from the page cache). OpenSSL, not coreutils' sha256sum: it uses the CPU's SHA
# extensions as ferry does, and sha256sum does not (measured here: 2.0 against 0.52 CPU s/GB),
# which would make a floor ferry passes without trying.
phase_sha256_floor() {
  local run=$1 dir=$WORK/out/bundle-blobs
  ensure_bundle
  if [ ! -d "$dir/blobs" ]; then
    mkdir -p "$dir"
    untimed extract-bundle tar -xf "$BUNDLE" -C "$dir"
  fi
  cat "$BUNDLE" >/dev/null
  find "$dir/blobs" -type f -printf '%s %p\n' | sort -nr | cut -d' ' -f2 >"$WORK/sha256-files.txt"
  cat $(cat "$WORK/sha256-files.txt") >/dev/null
  TIMED_REG_PID=none timed sha256_floor "$run" \
    xargs -a "$WORK/sha256-files.txt" -P "$(nproc)" -n 1 openssl dgst -sha256 -r
  [ "$(wc -l <"$WORK/logs/sha256_floor-$run.out")" = "$(wc -l <"$WORK/sha256-files.txt")" ] ||
    die "sha256_floor: not every blob hashed"
}

phase_skopeo_import_oci() {
  local run=$1 name=skopeo-import-oci-$1
  ensure_oci
  start_target "$name"
  clear_skopeo_cache
  cmd_skopeo_import_oci "$name"
  TIMED_REG_PID=${REG_PROC[$name]} timed skopeo_import_oci "$run" "${CMD[@]}"
  check_target "$name" any skopeo_import_oci
  if [ -z "$FULL_OCI" ] && selected skopeo_reimport_oci; then
    FULL_OCI=$name
  else
    stop_registry "$name"
  fi
}

phase_skopeo_import_sync() {
  local run=$1 name=skopeo-import-sync-$1
  ensure_syncdir
  start_target "$name"
  clear_skopeo_cache
  cmd_skopeo_import_sync "$name"
  TIMED_REG_PID=${REG_PROC[$name]} timed skopeo_import_sync "$run" "${CMD[@]}"
  check_target "$name" exact skopeo_import_sync
  stop_registry "$name"
}

ensure_full_ferry() {
  [ -n "$FULL_FERRY" ] && return
  ensure_bundle
  FULL_FERRY=full-ferry
  start_target "$FULL_FERRY"
  cmd_ferry_import "$FULL_FERRY"
  untimed "$FULL_FERRY" "${CMD[@]}"
  check_target "$FULL_FERRY" exact prepare nobytes
}

ensure_full_oci() {
  [ -n "$FULL_OCI" ] && return
  ensure_oci
  FULL_OCI=full-oci
  start_target "$FULL_OCI"
  clear_skopeo_cache
  cmd_skopeo_import_oci "$FULL_OCI"
  untimed "$FULL_OCI" "${CMD[@]}"
}

# The no-op: ferry import into the registry that holds everything, REIMPORT_RUNS times.
phase_ferry_reimport() {
  local run=$1 k n
  ensure_full_ferry
  cmd_ferry_import "$FULL_FERRY"
  for k in $(seq 1 "$REIMPORT_RUNS"); do
    n=$(((run - 1) * REIMPORT_RUNS + k))
    TIMED_REG_PID=${REG_PROC[$FULL_FERRY]} timed ferry_reimport "$n" "${CMD[@]}"
    check_ferry_import ferry_reimport "$n"
  done
}

# skopeo's no-op, one process: sync --src dir into the same full registry (same digests).
phase_skopeo_reimport() {
  local run=$1 k n
  ensure_syncdir
  ensure_full_ferry
  cmd_skopeo_import_sync "$FULL_FERRY"
  for k in $(seq 1 "$REIMPORT_RUNS"); do
    n=$(((run - 1) * REIMPORT_RUNS + k))
    clear_skopeo_cache
    TIMED_REG_PID=${REG_PROC[$FULL_FERRY]} timed skopeo_reimport "$n" "${CMD[@]}"
  done
  # Still the workload's digests (ferry's later re-imports stay no-ops).
  check_target "$FULL_FERRY" exact skopeo_reimport nobytes
}

# skopeo's no-op, the copy loop from the OCI layout, into a registry holding what it pushes.
phase_skopeo_reimport_oci() {
  local run=$1 k n
  ensure_full_oci
  cmd_skopeo_import_oci "$FULL_OCI"
  for k in $(seq 1 "$REIMPORT_RUNS"); do
    n=$(((run - 1) * REIMPORT_RUNS + k))
    clear_skopeo_cache
    TIMED_REG_PID=${REG_PROC[$FULL_OCI]} timed skopeo_reimport_oci "$n" "${CMD[@]}"
  done
}

# ---- serve phase ---------------------------------------------------------------------------

# The distribution storage the serve phase compares against: the bundle imported by ferry
# into a TLS + htpasswd registry (untimed), kept in $WORK/serve-dist (not under targets/, so
# stopping a registry on it does not delete it).
DIST_STORAGE=$WORK/serve-dist
ensure_dist_storage() {
  [ -d "$DIST_STORAGE/docker" ] && return
  ensure_bundle
  start_target serve-fill
  cmd_ferry_import serve-fill
  untimed serve-fill "${CMD[@]}"
  check_target serve-fill exact prepare nobytes
  rm -rf "$DIST_STORAGE"
  mv "$WORK/targets/serve-fill" "$DIST_STORAGE"
  stop_registry serve-fill
}

# ensure_serve_users: ferry serve's users file (bcrypt cost 4, as the test registries use).
ensure_serve_users() {
  [ -s "$WORK/serve-htpasswd" ] && return
  SERVE_USER=bench
  SERVE_PASS=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  htpasswd -nbB -C 4 "$SERVE_USER" "$SERVE_PASS" >"$WORK/serve-htpasswd"
}

# start_ferry_serve NAME: `ferry serve` of the bundle, TLS (self-signed CA in $WORK/serve-tls)
# and htpasswd, on a free port; sets FS_PID, FS_URL, FS_CA.
start_ferry_serve() {
  local name=$1 out=$WORK/logs/$1.out err=$WORK/logs/$1.err i
  ensure_serve_users
  : >"$out"
  "$FERRY" serve "$BUNDLE" --listen 127.0.0.1:0 --tls-self-signed "$WORK/serve-tls" \
    --htpasswd "$WORK/serve-htpasswd" >"$out" 2>"$err" &
  FS_PID=$!
  SERVE_PIDS+=("$FS_PID")
  for i in $(seq 1 600); do
    grep -q 'listening on' "$out" && break
    kill -0 "$FS_PID" 2>/dev/null || die "ferry serve did not start: $(cat "$err")"
    sleep 0.1
  done
  FS_URL=$(grep -o 'https://[^ ]*' "$out" | head -n1)
  [ -n "$FS_URL" ] || die "ferry serve not ready after 60 s: $(cat "$err")"
  FS_CA=$WORK/serve-tls/ca.crt
}

stop_pid() {
  local pid=$1 p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${SERVE_PIDS[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  SERVE_PIDS=("${keep[@]}")
}

# hwm_kib PID: the process's peak resident set (VmHWM) so far.
hwm_kib() { awk '/^VmHWM:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }

# serve_load PHASE RUN CLIENTS URL CA USER PASS SERVER_PID: the timed load, then its figures
# (and the server's peak RSS) as extras of PHASE.
serve_load() {
  local phase=$1 run=$2 clients=$3 url=$4 ca=$5 user=$6 pass=$7 pid=$8
  local per=$(((N_IMAGES * SERVE_PULLS + clients - 1) / clients))
  ((per > N_IMAGES)) && per=$N_IMAGES
  PULL_LOAD_PASSWORD=$pass TIMED_REG_PID=$pid timed "$phase" "$run" \
    "$PULL_LOAD" --url "$url" --images "$IMAGES_TXT" --clients "$clients" --per-client "$per" \
    --ca-file "$ca" --user "$user"
  local s=$WORK/logs/$phase-$run.out
  extra "$phase" bytes_pulled "$(jq .bytes "$s")"
  extra "$phase" manifest_p50_ms "$(jq .manifest_ms.p50 "$s")"
  extra "$phase" manifest_p99_ms "$(jq .manifest_ms.p99 "$s")"
  extra "$phase" probe_p50_ms "$(jq .probe_manifest_ms.p50 "$s")"
  extra "$phase" probe_p99_ms "$(jq .probe_manifest_ms.p99 "$s")"
  extra "$phase" errors "$(jq .errors "$s")"
  extra "$phase" server_rss_kib "$(hwm_kib "$pid")"
  extra "$phase" clients "$clients"
  [ "$(jq .errors "$s")" = 0 ] || log "$phase run $run: $(jq .errors "$s") errors, e.g. $(jq -c '.error_samples[:2]' "$s")"
}

phase_serve() {
  local run=$1 clients name
  ensure_bundle
  ensure_dist_storage
  for clients in $SERVE_CLIENTS; do
    name=serve_ferry_c$clients
    start_ferry_serve "$name-server-$run"
    serve_load "$name" "$run" "$clients" "$FS_URL" "$FS_CA" "$SERVE_USER" "$SERVE_PASS" "$FS_PID"
    stop_pid "$FS_PID"

    name=serve_dist_c$clients
    start_registry "$name-$run" tls-htpasswd --storage "$DIST_STORAGE"
    serve_load "$name" "$run" "$clients" "$(reg "$name-$run" url)" "$(reg "$name-$run" ca_file)" \
      "$(reg "$name-$run" username)" "$(reg "$name-$run" password)" "${REG_PROC[$name-$run]}"
    stop_pid "${SERVE_PID[$name-$run]}"
    unset "SERVE_PID[$name-$run]" "REG_PROC[$name-$run]"
  done
}

# ---- delta phase ---------------------------------------------------------------------------

# The two releases of the workload: OLD lacks the newer rke-tools, hyperkube and pause, NEW
# the older ones. Writes $WORK/release-{old,new}.txt and the old release's lock and bundle
# (untimed).
ensure_releases() {
  [ -s "$WORK/release-old.lock" ] && return
  grep -v -e 'rke-tools:v0.1.103' -e 'hyperkube:v1.30.5' -e 'pause:3.7' "$IMAGES_TXT" >"$WORK/release-old.txt"
  grep -v -e 'rke-tools:v0.1.100' -e 'hyperkube:v1.29.9' -e 'pause:3.6' "$IMAGES_TXT" >"$WORK/release-new.txt"
  untimed release-old-lock env DOCKER_CONFIG="$WORK/docker" "$FERRY" lock --images "$WORK/release-old.txt" \
    --upstream "docker.io=$UP_URL" --ca-file "$UP_CA" -o "$WORK/release-old.lock"
  mkdir -p "$SRC"
  untimed release-old-bundle env DOCKER_CONFIG="$WORK/docker" "$FERRY" export --lock "$WORK/release-old.lock" \
    --upstream "docker.io=$UP_URL" --ca-file "$UP_CA" -o "$SRC/release-old.tar"
}

phase_delta() {
  local run=$1 out=$WORK/out/delta
  ensure_releases
  rm -rf "$out" && mkdir -p "$out"
  local export=(env DOCKER_CONFIG="$WORK/docker" "$FERRY" export --images "$WORK/release-new.txt"
    --upstream "docker.io=$UP_URL" --ca-file "$UP_CA" --json)
  timed delta_export_full "$run" "${export[@]}" -o "$out/new.tar"
  extra delta_export_full bytes_written "$(stat -c %s "$out/new.tar")"
  timed delta_export "$run" "${export[@]}" --since "$WORK/release-old.lock" -o "$out/delta.tar"
  extra delta_export bytes_written "$(stat -c %s "$out/delta.tar")"
  extra delta_export bytes_left_out "$(jq .delta.bytes_left_out "$WORK/logs/delta_export-$run.out")"

  # The full new release into an empty registry; the delta into one holding the old release.
  local full=delta-full-$run base=delta-base-$run
  start_target "$full"
  TIMED_REG_PID=${REG_PROC[$full]} timed delta_import_full "$run" env DOCKER_CONFIG="$WORK/docker-$full" \
    "$FERRY" import "$out/new.tar" --to "$(reg "$full" host)" --ca-file "$(reg "$full" ca_file)" --json
  stop_registry "$full"
  start_target "$base"
  untimed "import-old-$run" env DOCKER_CONFIG="$WORK/docker-$base" "$FERRY" import "$SRC/release-old.tar" \
    --to "$(reg "$base" host)" --ca-file "$(reg "$base" ca_file)"
  TIMED_REG_PID=${REG_PROC[$base]} timed delta_import "$run" env DOCKER_CONFIG="$WORK/docker-$base" \
    "$FERRY" import "$out/delta.tar" --to "$(reg "$base" host)" --ca-file "$(reg "$base" ca_file)" --json
  # The registry now holds the whole new release.
  untimed "verify-new-$run" env DOCKER_CONFIG="$WORK/docker-$base" "$FERRY" verify "$out/new.tar" \
    --to "$(reg "$base" host)" --ca-file "$(reg "$base" ca_file)"
  stop_registry "$base"
  rm -rf "$out"
}

# ---- archive phase -------------------------------------------------------------------------

# A Docker Engine of the benchmark's own (overlay2, else vfs; no iptables, no bridge), whose
# data-root is $WORK/engine; sets ENGINE (the DOCKER_HOST) and ENGINE_PID.
ENGINE=""
start_engine() {
  [ -n "$ENGINE" ] && return
  command -v dockerd >/dev/null || die "the archive phase needs dockerd (apt-get install docker.io)"
  local d=$WORK/engine driver
  for driver in overlay2 vfs; do
    rm -rf "$d" && mkdir -p "$d/config"
    dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none --storage-driver="$driver" \
      --data-root "$d/root" --exec-root "$d/exec" --pidfile "$d/pid" -H "unix://$d/docker.sock" \
      >"$WORK/logs/dockerd-$driver.log" 2>&1 &
    ENGINE_PID=$!
    SERVE_PIDS+=("$ENGINE_PID")
    ENGINE=unix://$d/docker.sock
    local i
    for i in $(seq 1 100); do
      DOCKER_HOST=$ENGINE docker version >/dev/null 2>&1 && break
      sleep 0.2
    done
    if DOCKER_HOST=$ENGINE docker info 2>/dev/null | grep -q "Storage Driver: $driver"; then
      log "docker engine ($driver) at $ENGINE"
      NOTES+=("archive_docker: Docker Engine $(DOCKER_HOST=$ENGINE docker version --format '{{.Server.Version}}'), storage driver $driver")
      return
    fi
    stop_pid "$ENGINE_PID"
    ENGINE=""
  done
  die "dockerd did not start (see $WORK/logs/dockerd-*.log)"
}
dk() { DOCKER_HOST=$ENGINE DOCKER_CONFIG=$WORK/engine/config docker "$@"; }

# trust_ca HOST CA: the engine trusts CA for HOST (removed at the end of the phase).
TRUSTED=()
trust_ca() {
  mkdir -p "/etc/docker/certs.d/$1"
  cp "$2" "/etc/docker/certs.d/$1/ca.crt"
  TRUSTED+=("/etc/docker/certs.d/$1")
}

# The workload as rancher-save-images.sh writes it: pull every image, save, gzip (untimed;
# kept in $BENCH_DIR next to the workload and reused, like it).
ARCHIVE=""
ensure_archive() {
  [ -n "$ARCHIVE" ] && return
  start_engine
  ARCHIVE=$BENCH_DIR/rancher-images-$SCALE.tar.gz
  if [ ! -s "$ARCHIVE" ] || [ "$ARCHIVE" -ot "$WORKLOAD/done" ]; then
    trust_ca "$UP_HOST" "$UP_CA"
    printf '%s' "$UP_PASS" | dk login "$UP_HOST" --username "$UP_USER" --password-stdin >/dev/null
    local ref pulled=()
    while read -r ref; do
      [ -n "$ref" ] || continue
      untimed "pull-${ref//[\/:]/_}" dk pull "$UP_HOST/$ref"
      untimed "tag-${ref//[\/:]/_}" dk tag "$UP_HOST/$ref" "$ref"
      pulled+=("$ref")
    done <"$IMAGES_TXT"
    log "preparing $ARCHIVE (docker save | gzip, untimed)"
    dk save "${pulled[@]}" | gzip --stdout >"$ARCHIVE.partial"
    mv "$ARCHIVE.partial" "$ARCHIVE"
    # The engine starts the timed runs empty.
    dk rmi -f $(dk images -q | sort -u) >/dev/null 2>&1 || true
  fi
  log "rancher-images.tar.gz: $(mb "$(stat -c %s "$ARCHIVE")") MB"
  extra archive_ferry archive_bytes "$(stat -c %s "$ARCHIVE")"
}

phase_archive() {
  local run=$1 name
  ensure_archive

  name=archive-ferry-$run
  start_target "$name"
  TIMED_REG_PID=${REG_PROC[$name]} timed archive_ferry "$run" env DOCKER_CONFIG="$WORK/docker-$name" \
    "$FERRY" import "$ARCHIVE" --to "$(reg "$name" host)" --ca-file "$(reg "$name" ca_file)" --json
  local s=$WORK/logs/archive_ferry-$run.out
  [ "$(jq .pushed "$s")" = "$N_IMAGES" ] || die "archive_ferry pushed $(jq .pushed "$s") of $N_IMAGES images"
  extra archive_ferry disk_bytes "$(jq .spooled_bytes "$s")"
  stop_registry "$name"

  # rancher-load-images.sh: docker load, then docker tag + docker push per image.
  name=archive-docker-$run
  start_target "$name"
  local host
  host=$(reg "$name" host)
  trust_ca "$host" "$(reg "$name" ca_file)"
  printf '%s' "${TARGET_CREDS[$name]#*:}" | dk login "$host" --username "${TARGET_CREDS[$name]%%:*}" --password-stdin >/dev/null
  dk rmi -f $(dk images -q | sort -u) >/dev/null 2>&1 || true
  local before
  before=$(du -sb "$WORK/engine/root" | cut -f1)
  DOCKER_HOST=$ENGINE DOCKER_CONFIG=$WORK/engine/config TIMED_REG_PID=${REG_PROC[$name]} timed archive_docker "$run" bash -c '
    set -euo pipefail
    archive=$1 host=$2 list=$3
    docker load --input "$archive" >/dev/null
    while read -r ref; do
      [ -n "$ref" ] || continue
      docker tag "$ref" "$host/$ref"
      docker push "$host/$ref" >/dev/null
    done <"$list"' _ "$ARCHIVE" "$host" "$IMAGES_TXT"
  extra archive_docker disk_bytes "$(( $(du -sb "$WORK/engine/root" | cut -f1) - before ))"
  check_target "$name" any archive_docker nobytes
  dk rmi -f $(dk images -q | sort -u) >/dev/null 2>&1 || true
  stop_registry "$name"
}

# ---- scale phase ---------------------------------------------------------------------------

# ---- signatures (phase `signed`) ------------------------------------------------------------
# The workload with every image signed as `cosign sign --key` signs (scripts/bench_sign.py,
# python3-cryptography: a `.sig` per image, in a hard-linked copy of the workload's storage,
# generated once), served by a second TLS + token upstream. In every run, in alternating order:
#   signed_export        ferry export: finds and carries every signature (the default)
#   signed_export_nosig  the same export with --remove-signatures (no lookups at all)
# then each bundle into a fresh TLS + htpasswd registry (signed_import, signed_import_nosig),
# and signed_verify: ferry verify --key of the signed bundle, offline (every blob re-hashed,
# every signature checked). The targets: carrying costs at most 5% of wall time.
SIGNED_UP=""
SIGNED_KEY=""
prepare_signed() {
  [ -n "$SIGNED_UP" ] && return
  local dir=$BENCH_DIR/workload-$SCALE-signed
  if [ ! -f "$dir/done" ] || [ "$WORKLOAD/done" -nt "$dir/done" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    cp -al "$WORKLOAD/storage" "$dir/storage"
    untimed sign python3 "$ROOT/scripts/bench_sign.py" --storage "$dir/storage" \
      --images "$IMAGES_TXT" --key-dir "$dir"
    touch "$dir/done"
  fi
  SIGNED_KEY=$dir/cosign.pub
  start_registry upstream-signed tls-token --storage "$dir/storage"
  mkdir -p "$WORK/docker-upstream-signed"
  jq -n --arg h "$(reg upstream-signed host)" \
    --arg a "$(printf '%s:%s' "$(reg upstream-signed username)" "$(reg upstream-signed password)" | base64 -w0)" \
    '{auths: {($h): {auth: $a}}}' >"$WORK/docker-upstream-signed/config.json"
  SIGNED_UP=upstream-signed
}

# signed_export_one PHASE RUN [--remove-signatures]: the bundle lands in $SRC/PHASE.tar.
signed_export_one() {
  local phase=$1 run=$2
  shift 2
  # shellcheck disable=SC2207
  local jobs=($(ferry_jobs)) out=$SRC/$phase.tar
  mkdir -p "$SRC" && rm -f "$out"
  TIMED_REG_PID=${REG_PROC[upstream-signed]} timed "$phase" "$run" \
    env DOCKER_CONFIG="$WORK/docker-upstream-signed" \
    "$FERRY" export --images "$IMAGES_TXT" --upstream "docker.io=$(reg upstream-signed url)" \
    --ca-file "$(reg upstream-signed ca_file)" "${jobs[@]}" -o "$out" --json "$@"
  local s=$WORK/logs/$phase-$run.out
  # exported counts the signatures too (one per image with them, none with --remove-signatures).
  local want=$((2 * N_IMAGES))
  [ "${1:-}" = --remove-signatures ] && want=$N_IMAGES
  [ "$(jq .exported "$s")" = "$want" ] && [ "$(jq '.failed | length' "$s")" = 0 ] ||
    die "$phase: ferry exported $(jq .exported "$s") images and signatures, not $want"
  extra "$phase" bytes_written "$(stat -c %s "$out")"
}

# signed_import_one PHASE RUN BUNDLE
signed_import_one() {
  local phase=$1 run=$2 bundle=$3 name=$1-$2
  # shellcheck disable=SC2207
  local jobs=($(ferry_jobs))
  start_target "$name"
  TIMED_REG_PID=${REG_PROC[$name]} timed "$phase" "$run" \
    env DOCKER_CONFIG="$WORK/docker-$name" \
    "$FERRY" import "$bundle" --to "$(reg "$name" host)" --ca-file "$(reg "$name" ca_file)" \
    "${jobs[@]}" --json
  local s=$WORK/logs/$phase-$run.out
  [ "$(jq '.failed | length' "$s")" = 0 ] || die "$phase: ferry import failed: $(jq -c .failed "$s")"
  check_target "$name" exact "$phase"
  stop_registry "$name"
}

phase_signed() {
  local run=$1 order
  prepare_signed
  if ((run % 2)); then order="signed nosig"; else order="nosig signed"; fi
  for o in $order; do
    if [ "$o" = signed ]; then
      signed_export_one signed_export "$run"
    else
      signed_export_one signed_export_nosig "$run" --remove-signatures
    fi
  done
  local carried
  carried=$(tar -xOf "$SRC/signed_export.tar" images.lock | grep -c 'kind: sig' || true)
  [ "$carried" -ge 1 ] || die "signed_export carried no signature"
  extra signed_export signatures_carried "$carried"
  for o in $order; do
    if [ "$o" = signed ]; then
      signed_import_one signed_import "$run" "$SRC/signed_export.tar"
    else
      signed_import_one signed_import_nosig "$run" "$SRC/signed_export_nosig.tar"
    fi
  done
  TIMED_REG_PID=none timed signed_verify "$run" \
    "$FERRY" verify "$SRC/signed_export.tar" --key "$SIGNED_KEY" --json
}

# phase_scale: N small images in N repositories on a token-auth TLS upstream, for N in
# BENCH_SCALE_N (scripts/bench_scale.sh; its rows go to $WORK/scale.tsv, reported by
# scripts/bench_scale_report.py).
# shellcheck source=scripts/bench_scale.sh
source "$ROOT/scripts/bench_scale.sh"

# ---- report --------------------------------------------------------------------------------

summarize() {
  local json=$BENCH_DIR/results-$STAMP.json
  printf '%s\n' "${NOTES[@]}" >"$WORK/notes.txt"
  jq -n --arg date "$STAMP" --arg scale "$SCALE" --argjson nruns "$RUNS" --argjson quick "$QUICK" \
    --arg ferry "$("$FERRY" --version 2>/dev/null || echo unknown)" \
    --arg skopeo "$(skopeo --version)" \
    --arg curl "$(curl --version | head -n1)" \
    --arg registry "$(docker-registry --version 2>/dev/null || echo unknown)" \
    --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
    --argjson ncpu "$(nproc)" --arg kernel "$(uname -r)" \
    --argjson reimport_runs "$REIMPORT_RUNS" --argjson curl_parallel "$CURL_PARALLEL" '{
      date: $date, quick: ($quick == 1), scale: $scale, runs_per_phase: $nruns,
      reimports_per_run: $reimport_runs, host: {cpu: $cpu, cpus: $ncpu, kernel: $kernel},
      versions: {ferry: $ferry, skopeo: $skopeo, curl: $curl, registry: $registry},
      curl: {parallel: $curl_parallel}}' >"$WORK/meta.json"
  echo
  # Medians, ratios, targets and the table: scripts/bench_report.py (tested by
  # scripts/test_bench_report.py).
  python3 "$ROOT/scripts/bench_report.py" --runs "$RUNS_TSV" --extra "$WORK/extra.tsv" \
    --workload "$WORK/workload.json" --notes "$WORK/notes.txt" --meta "$WORK/meta.json" \
    --scale "$WORK/scale.tsv" --out "$json"
  echo "results: $json"
  RESULTS_JSON=$json
}

# ---- main ----------------------------------------------------------------------------------

main() {
  ensure_tools
  mkdir -p "$WORK/logs" "$WORK/out"
  : >"$RUNS_TSV"
  : >"$WORK/extra.tsv"
  : >"$WORK/scale.tsv"
  build
  generate
  start_registry upstream tls-token --dir "$WORKLOAD"
  setup_clients

  NOTES+=("page cache not dropped (not possible here): the registry serves its storage from RAM")
  NOTES+=("curl_floor fsyncs every blob as ferry and skopeo do; ferry/curl is against it")
  NOTES+=("peak RSS of skopeo_copy and the curl phases is that of the largest single process (GNU time)")
  NOTES+=("load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (a shared machine: compare ratios, not absolutes)")
  ((QUICK)) && NOTES+=("quick run: small workload, latency-bound; the targets are meant for the full workload")
  NOTES+=("reg CPU s: user+system CPU seconds of the docker-registry on the other end during the timed command (the upstream for export phases, the target for import phases); on $(nproc) CPUs it competes with the client")
  if needs_bundle || needs_oci || needs_syncdir; then
    NOTES+=("import phases: each run into a fresh, empty TLS + htpasswd registry (bcrypt cost 4); re-imports (${REIMPORT_RUNS} per run) into one kept full registry; sources (bundle, OCI layout, sync dir) on local disk, likely in the page cache")
    NOTES+=("skopeo_reimport: skopeo sync --src dir into the registry ferry filled (the same digests); skopeo_reimport_oci: the copy loop from the OCI layout into a registry that loop filled")
  fi

  if selected archive; then
    NOTES+=("archive_*: rancher-images.tar.gz of the workload made by a real Docker Engine (docker save | gzip); archive_ferry: ferry import of it; archive_docker: docker load + docker tag/push per image (rancher-load-images.sh); each into a fresh TLS + htpasswd registry; disk MB: ferry's spool, the engine's data-root growth")
  fi
  if selected delta; then
    NOTES+=("delta_*: the workload as two releases (old: rke-tools v0.1.100, hyperkube v1.29.9, pause 3.6; new: v0.1.103, v1.30.5, 3.7; the other 25 images in both); delta_export is ferry export --since old.lock, delta_import imports it into a registry holding the old release (then ferry verify of the full new bundle against it)")
  fi
  if selected serve; then
    NOTES+=("serve_*_cN: N clients (examples/pull_load.rs) pull the workload ${SERVE_PULLS}x in all, whole images, 3 blobs at a time per client, blobs length-checked; both servers TLS + htpasswd on 127.0.0.1, started fresh per measurement; MB/s = bytes pulled / wall; peak RSS and reg CPU are the server's")
  fi

  local run phase
  for run in $(seq 1 "$RUNS"); do
    for phase in $PHASES; do
      declare -F "phase_$phase" >/dev/null || die "unknown phase $phase"
      "phase_$phase" "$run"
    done
    if [ "$BIG" = 1 ]; then
      phase_ferry_big "$run"
    fi
  done
  summarize
  if ((STRICT)) && [ "$(jq .pass "$RESULTS_JSON")" != true ]; then
    exit 3
  fi
}

main
