#!/usr/bin/env bash
# Benchmark of `ferry export` (not a test): a large deterministic workload of RKE-named images
# (examples/bench_env.rs) served by a local TLS + token-auth registry (CNCF distribution and the
# integration-test token server), and in the same run, on the same images:
#
#   ferry_export   ferry export --images images.txt -o bundle.tar
#   skopeo_copy    skopeo copy --all of each image into ONE OCI layout (rewrites Docker types)
#   skopeo_sync    skopeo sync --all --preserve-digests into a dir: (digest-preserving, no dedup)
#   curl_floor     one bearer token, then every unique blob with curl, N in parallel, each
#                  written and fsynced (as ferry and skopeo do); optional phases curl_files
#                  (no fsync) and curl_null (to /dev/null) show the write and network costs
#   ferry_big      (BENCH_BIG=1) ferry export of an image with a 1 GiB layer: the RSS check
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
#   BENCH_BIG=1         also run ferry_big (generates one extra 1 GiB layer once)
#   BENCH_BIG_GB        size of that layer in GiB (default 1)
#   BENCH_PHASES        phases to run (default "ferry_export skopeo_copy skopeo_sync curl_floor";
#                       also available: curl_files curl_null)
#   BENCH_JOBS          ferry --jobs (default: ferry's own default)
#   BENCH_CURL_PARALLEL parallel curl processes for the floor (default 8)
#   BENCH_NO_BUILD=1    use the binaries already in target/release
#
# Output: a table on stdout and the same as JSON in $BENCH_DIR/results-<date>.json; the
# workload in $BENCH_DIR/workload-{small,full}/ (kept, generated once), logs of every timed
# command in $BENCH_DIR/run-<date>/logs/.
#
# Adding a phase (e.g. the import phases): write `phase_NAME RUN` that prepares a cold state,
# calls `timed NAME RUN CMD…` (wall, CPU and peak RSS go to runs.tsv) and checks the result;
# then add NAME to BENCH_PHASES (and, if it has a target, to `summarize`). A second registry
# (e.g. a fresh TLS + htpasswd import target) comes from
# `start_registry target tls-htpasswd --storage DIR`; its fields from `reg target url` etc.
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
PHASES=${BENCH_PHASES:-ferry_export skopeo_copy skopeo_sync curl_floor}
CURL_PARALLEL=${BENCH_CURL_PARALLEL:-8}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

FERRY=$ROOT/target/release/ferry
BENCH_ENV=$ROOT/target/release/examples/bench_env
WORKLOAD=$BENCH_DIR/workload-$SCALE
WORK=$BENCH_DIR/run-$STAMP # scratch of this run: outputs, logs, configs
RUNS_TSV=$WORK/runs.tsv
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
  for pair in /usr/bin/time:time skopeo:skopeo curl:curl jq:jq docker-registry:docker-registry; do
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
}

build() {
  if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
    [ -x "$FERRY" ] && [ -x "$BENCH_ENV" ] || die "BENCH_NO_BUILD=1 but target/release/{ferry,examples/bench_env} missing"
    return
  fi
  log "building ferry and the bench_env example (release)"
  cargo build --release --quiet --bin ferry --example bench_env
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
  # Outputs of an interrupted or failed phase can be gigabytes; the logs stay.
  rm -rf "$WORK/out"
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
  local i
  for i in $(seq 1 300); do
    [ -s "$info" ] && break
    kill -0 "$pid" 2>/dev/null || die "registry $name did not start: $(cat "$WORK/logs/registry-$name.err")"
    sleep 0.1
  done
  [ -s "$info" ] || die "registry $name not ready after 30 s"
  log "registry $name ($auth): $(reg "$name" url)"
}
reg() { jq -r --arg f "$2" '.[$f] // empty' "$WORK/registry-$1.json"; }

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

# timed PHASE RUN CMD…: runs CMD under GNU time; appends PHASE RUN WALL_S RSS_KIB CPU_S to
# runs.tsv. Stdout goes to logs/PHASE-RUN.out, stderr to .err. Writes of earlier phases are
# flushed first so they do not land in this timing. A failing command ends the benchmark.
timed() {
  local phase=$1 run=$2
  shift 2
  local base=$WORK/logs/$phase-$run
  sync
  local t0 t1 rc=0
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
  t1=$(date +%s%N)
  if [ "$rc" -ne 0 ]; then
    log "$phase run $run FAILED (exit $rc); last lines of $base.err:"
    tail -n 20 "$base.err" >&2
    exit 1
  fi
  local wall rss cpu
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$base.time")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$base.time")
  printf '%s\t%s\t%s\t%s\t%s\n' "$phase" "$run" "$wall" "$rss" "$cpu" >>"$RUNS_TSV"
  log "$(printf '%-13s run %d: %7.2f s  %6.1f MiB peak RSS  %6.2f s CPU' "$phase" "$run" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu")"
}

# extra PHASE KEY VALUE: a fact about a phase for the JSON (bytes written, digests changed…).
extra() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/extra.tsv"; }

# ---- phases --------------------------------------------------------------------------------

phase_ferry_export() {
  local run=$1 out=$WORK/out/ferry
  rm -rf "$out" && mkdir -p "$out"
  local jobs=()
  [ -n "${BENCH_JOBS:-}" ] && jobs=(--jobs "$BENCH_JOBS")
  timed ferry_export "$run" env DOCKER_CONFIG="$WORK/docker" \
    "$FERRY" export --images "$IMAGES_TXT" --upstream "docker.io=$UP_URL" --ca-file "$UP_CA" \
    "${jobs[@]}" -o "$out/bundle.tar" --json
  local s=$WORK/logs/ferry_export-$run.out
  [ "$(jq .exported "$s")" = "$N_IMAGES" ] && [ "$(jq '.failed | length' "$s")" = 0 ] ||
    die "ferry exported $(jq .exported "$s") of $N_IMAGES images"
  extra ferry_export bytes_written "$(stat -c %s "$out/bundle.tar")"
  rm -rf "$out"
}

phase_skopeo_copy() {
  local run=$1 out=$WORK/out/skopeo-oci
  rm -rf "$out" && mkdir -p "$(dirname "$out")"
  clear_skopeo_cache
  # One process per image (what a user's loop does); all into the same layout.
  timed skopeo_copy "$run" bash -c '
    set -euo pipefail
    out=$1 host=$2 certs=$3 creds=$4 list=$5
    shift 5
    while read -r ref; do
      [ -n "$ref" ] || continue
      "$@" copy --all --src-cert-dir "$certs" --src-creds "$creds" "docker://$host/$ref" "oci:$out:$ref"
    done <"$list"' _ "$out" "$UP_HOST" "$UP_CERT_DIR" "$UP_USER:$UP_PASS" "$IMAGES_TXT" "${SKOPEO[@]}"
  extra skopeo_copy bytes_written "$(du -sb "$out" | cut -f1)"
  # How many top-level digests skopeo changed (Docker types rewritten to OCI).
  local changed=0 ref repo tag want got
  while read -r ref; do
    repo=${ref%:*} tag=${ref##*:}
    want=$(cat "$WORKLOAD/storage/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link")
    got=$(jq -r --arg r "$ref" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$out/index.json")
    [ "$want" = "$got" ] || changed=$((changed + 1))
  done <"$IMAGES_TXT"
  extra skopeo_copy digests_changed "$changed"
  rm -rf "$out"
}

phase_skopeo_sync() {
  local run=$1 out=$WORK/out/skopeo-dir
  rm -rf "$out" && mkdir -p "$out"
  clear_skopeo_cache
  timed skopeo_sync "$run" "${SKOPEO[@]}" sync --all --preserve-digests --src yaml --dest dir \
    "$WORK/sync.yaml" "$out"
  local n
  n=$(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$n" = "$N_IMAGES" ] || die "skopeo sync wrote $n of $N_IMAGES images"
  extra skopeo_sync bytes_written "$(du -sb "$out" | cut -f1)"
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

# ---- report --------------------------------------------------------------------------------

summarize() {
  local json=$BENCH_DIR/results-$STAMP.json
  local notes_json
  notes_json=$(printf '%s\n' "${NOTES[@]}" | jq -R . | jq -s .)
  jq -n \
    --rawfile runs "$RUNS_TSV" \
    --rawfile extra "$WORK/extra.tsv" \
    --slurpfile workload "$WORK/workload.json" \
    --argjson notes "$notes_json" \
    --arg date "$STAMP" --arg scale "$SCALE" --argjson nruns "$RUNS" --argjson quick "$QUICK" \
    --arg ferry "$("$FERRY" --version 2>/dev/null || echo unknown)" \
    --arg skopeo "$(skopeo --version)" \
    --arg curl "$(curl --version | head -n1)" \
    --arg registry "$(docker-registry --version 2>/dev/null || echo unknown)" \
    --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
    --argjson ncpu "$(nproc)" \
    --arg kernel "$(uname -r)" \
    --argjson curl_parallel "$CURL_PARALLEL" '
    def median: sort | if length == 0 then null
      elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def r2: if . == null then null else (. * 100 | round) / 100 end;
    def rows($s): $s | split("\n") | map(select(length > 0) | split("\t"));
    ($workload[0]) as $w
    | (rows($runs) | map({phase: .[0], run: (.[1] | tonumber), wall_s: (.[2] | tonumber),
        rss_kib: (.[3] | tonumber), cpu_s: (.[4] | tonumber)})) as $r
    | (rows($extra) | map({phase: .[0], key: .[1], value: (.[2] | tonumber)})) as $x
    | ($r | map(.phase) | unique) as $names
    | ($names | map(. as $p
        | ($r | map(select(.phase == $p))) as $pr
        | (if $p == "ferry_big" then $w.big.unique_bytes else $w.unique_bytes end) as $bytes
        | ($pr | map(.wall_s) | median) as $med
        | {key: $p, value: ({
            runs: ($pr | map(del(.phase))),
            median_wall_s: $med,
            mb_per_s: ($bytes / 1e6 / $med | r2),
            peak_rss_mib: ($pr | map(.rss_kib) | max / 1024 | r2),
            median_cpu_s: ($pr | map(.cpu_s) | median),
            unique_bytes: $bytes}
          + ($x | map(select(.phase == $p)) | group_by(.key)
              | map({key: .[0].key, value: (map(.value) | max)}) | from_entries))})
      | from_entries) as $ph
    | def ratio($a; $b): if ($ph[$a] and $ph[$b]) then ($ph[$a].median_wall_s / $ph[$b].median_wall_s | r2) else null end;
    {
      skopeo_sync_over_ferry: ratio("skopeo_sync"; "ferry_export"),
      skopeo_copy_over_ferry: ratio("skopeo_copy"; "ferry_export"),
      ferry_over_curl: ratio("ferry_export"; "curl_floor"),
      ferry_over_curl_files: ratio("ferry_export"; "curl_files"),
      ferry_over_curl_null: ratio("ferry_export"; "curl_null")
    } as $ratios
    | [
        {name: "export vs skopeo sync (digest-preserving)", metric: "skopeo_sync / ferry wall", value: $ratios.skopeo_sync_over_ferry, op: ">=", target: 2.5},
        {name: "export vs skopeo copy (fastest path)", metric: "skopeo_copy / ferry wall", value: $ratios.skopeo_copy_over_ferry, op: ">=", target: 1.5},
        {name: "export vs curl floor", metric: "ferry / curl wall", value: $ratios.ferry_over_curl, op: "<=", target: 1.3},
        {name: "export peak RSS", metric: "MiB", value: $ph.ferry_export.peak_rss_mib, op: "<=", target: 64},
        {name: "export peak RSS with a big layer", metric: "MiB", value: $ph.ferry_big.peak_rss_mib, op: "<=", target: 64}
      ]
    | map(select(.value != null) | . + {pass: (if .op == ">=" then .value >= .target else .value <= .target end)}) as $targets
    | {
        date: $date, quick: ($quick == 1), scale: $scale, runs_per_phase: $nruns,
        host: {cpu: $cpu, cpus: $ncpu, kernel: $kernel},
        versions: {ferry: $ferry, skopeo: $skopeo, curl: $curl, registry: $registry},
        workload: $w,
        curl: {parallel: $curl_parallel},
        phases: $ph, ratios: $ratios, targets: $targets,
        pass: ($targets | all(.pass)),
        notes: $notes
      }' >"$json"
  RESULTS_JSON=$json

  echo
  jq -r '
    def lpad($n): tostring | (" " * ([$n - length, 0] | max)) + .;
    def rpad($n): tostring | . + (" " * ([$n - length, 0] | max));
    def row: "\(.[0] | rpad(14))\(.[1] | lpad(9))\(.[2] | lpad(9))\(.[3] | lpad(14))\(.[4] | lpad(8))\(.[5] | lpad(12))";
    "ferry export benchmark \(.date): \(.scale) workload, \(.workload.images) images, \(.workload.unique_blobs) unique blobs, \(.workload.unique_bytes / 1e6 | floor) MB unique (\(.workload.bytes_without_dedup / 1e6 | floor) MB counted per image); median of \(.runs_per_phase) run(s)",
    "",
    (["phase", "wall s", "MB/s", "peak RSS MiB", "CPU s", "written MB"] | row),
    (.phases | to_entries[] | [.key, .value.median_wall_s, .value.mb_per_s, .value.peak_rss_mib,
       .value.median_cpu_s, (if .value.bytes_written then (.value.bytes_written / 1e6 | floor) else "-" end)] | row),
    "",
    "ratios: skopeo_sync/ferry \(.ratios.skopeo_sync_over_ferry)  skopeo_copy/ferry \(.ratios.skopeo_copy_over_ferry)  ferry/curl \(.ratios.ferry_over_curl)"
      + (if .ratios.ferry_over_curl_files then "  ferry/curl_files \(.ratios.ferry_over_curl_files)" else "" end)
      + (if .ratios.ferry_over_curl_null then "  ferry/curl_null \(.ratios.ferry_over_curl_null)" else "" end)
  ' "$json"
  echo
  jq -r '
    (.targets[] | "\(if .pass then "PASS" else "FAIL" end)  \(.name): \(.metric) = \(.value) (target \(.op) \(.target))"),
    (if .phases.skopeo_copy.digests_changed then "note: skopeo copy into the OCI layout changed \(.phases.skopeo_copy.digests_changed) of \(.workload.images) top-level digests" else empty end),
    (.notes[] | "note: \(.)")
  ' "$json"
  echo "results: $json"
}

# ---- main ----------------------------------------------------------------------------------

main() {
  ensure_tools
  mkdir -p "$WORK/logs" "$WORK/out"
  : >"$RUNS_TSV"
  : >"$WORK/extra.tsv"
  build
  generate
  start_registry upstream tls-token --dir "$WORKLOAD"
  setup_clients

  NOTES+=("page cache not dropped (not possible here): the registry serves its storage from RAM")
  NOTES+=("curl_floor fsyncs every blob as ferry and skopeo do; ferry/curl is against it")
  NOTES+=("peak RSS of skopeo_copy and the curl phases is that of the largest single process (GNU time)")
  NOTES+=("load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (a shared machine: compare ratios, not absolutes)")
  ((QUICK)) && NOTES+=("quick run: small workload, latency-bound; the targets are meant for the full workload")

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
