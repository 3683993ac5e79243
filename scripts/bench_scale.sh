# shellcheck shell=bash disable=SC2015
# Sourced by scripts/bench.sh (uses its log, die, untimed, start_registry, stop_registry,
# start_target, reg, REG_PROC, FERRY, BENCH_ENV, BENCH_DIR, WORK, RUNS, SKOPEO, proc_ticks,
# CLK_TCK, clear_skopeo_cache): the `scale` phase.
#
# The scale workload: N small images `scale/app-NNNNN:v1` in N repositories (one config, one
# 2–100 KiB layer, half of them one shared 64 KiB base layer; examples/bench_env/scale.rs),
# served by its own TLS + token-auth registry (the upstream, as Docker Hub would be). What is
# measured is the cost per image and per repository (requests, tokens, bookkeeping), not bytes.
# For every N of BENCH_SCALE_N, in every run, each step cold (fresh outputs, fresh targets,
# skopeo's blob-info cache deleted, earlier writes flushed):
#
#   ferry_lock          ferry lock --images images.txt -o images.lock (tags resolved upstream)
#   ferry_export        ferry export --images images.txt -o bundle.tar: from the LIST, as users
#                       run it (resolves the tags again; the lock of ferry_lock is not used)
#   skopeo_sync_export  skopeo sync --all --preserve-digests --src yaml --dest dir
#   ferry_import        ferry import bundle.tar into a fresh, empty TLS + htpasswd registry
#   ferry_reimport      ferry import again into that full registry: the no-op
#   ferry_verify        ferry verify --lock images.lock (of ferry_lock) --to that registry
#   skopeo_sync_import  skopeo sync --all --preserve-digests --scoped --src dir --dest docker
#                       (skopeo_sync_export's dir) into another fresh, empty registry
#
# Every result is checked (ferry's --json summaries count N images and no failure; the targets
# hold every tag with the workload's digest; skopeo's dir holds N images): a broken run dies.
# Rows go to $WORK/scale.tsv, one per timed step:
#   STEP N RUN WALL_S PEAK_RSS_KIB CPU_S REGISTRY_CPU_S TOKEN_REQUESTS
# (REGISTRY_CPU_S: the docker-registry on the other end; TOKEN_REQUESTS: requests the
# upstream's token server answered during the step, empty for steps against a target), plus
# facts of each workload (`workload N KEY VALUE`: images, repositories, manifest_bytes,
# unique_blobs, unique_bytes) and notes (`note TEXT`); scripts/bench_scale_report.py turns
# them into medians, seconds per 1,000 images, ratios, memory per image and targets. Logs:
# $WORK/logs/scale-STEP-N-RUN.{out,err,time}.
#
# skopeo syncs one image after the other: measured here at N = 100-400 it needs ~30 s per
# 1,000 images to export and ~85 s per 1,000 to import (ferry: ~9 and ~25), so its steps run
# only for N <= BENCH_SCALE_SKOPEO_MAX (default 1000: the targets are at N = 1,000; at 3,000
# skopeo alone would add ~6 minutes per run), in every run by default (true medians of 3 for
# the ratio targets). Estimated phase time on 2 CPUs with the defaults and 3 runs: ~18 min
# (per run ~20 s at N = 100, ~3 min at 1,000 of which skopeo ~2, ~3 min at 3,000);
# BENCH_SCALE_SKOPEO_RUNS=1 saves ~4 min. The workloads are generated once into
# $BENCH_DIR/workload-scale-N (kept, reused); each upstream is started in the first run and
# stopped after the last.
#
# Run the phase alone (3 runs; bench.sh also checks the main workload and starts its upstream,
# which the phase does not use):
#   BENCH_PHASES=scale scripts/bench.sh
# Environment:
#   BENCH_SCALE_N            image counts (default "100 1000 3000")
#   BENCH_SCALE_SKOPEO_MAX   largest N the skopeo steps run at (default 1000; 0: never)
#   BENCH_SCALE_SKOPEO_RUNS  runs the skopeo steps run in, from the first (default: all)
#   BENCH_JOBS               ferry --jobs (as for the other phases)

SCALE_NS=${BENCH_SCALE_N:-100 1000 3000}
SCALE_SKOPEO_MAX=${BENCH_SCALE_SKOPEO_MAX:-1000}
SCALE_SKOPEO_RUNS=${BENCH_SCALE_SKOPEO_RUNS:-$RUNS}
SCALE_TSV=$WORK/scale.tsv
declare -A SCALE_READY=() # N -> 1 once its workload is generated and its upstream runs

# scale_row FIELD…: one tab-separated line of scale.tsv.
scale_row() {
  local IFS=$'\t'
  printf '%s\n' "$*" >>"$SCALE_TSV"
}

# scale_token_requests N: the requests the token server of N's upstream has answered so far.
scale_token_requests() {
  local url
  url=$(reg "scale-up-$1" token_realm)
  curl -sSf --noproxy '*' --cacert "$(reg "scale-up-$1" ca_file)" "${url%/token}/stats" | jq -e .requests
}

# scale_timed STEP N RUN CMD…: runs CMD under GNU time (as `timed` does) and appends a row to
# scale.tsv. Against a target registry when TIMED_REG_PID is set (its CPU is measured; no
# token requests), else against N's upstream (its CPU, and its token server's requests).
scale_timed() {
  local step=$1 n=$2 run=$3
  shift 3
  local base=$WORK/logs/scale-$step-$n-$run
  local regpid=${TIMED_REG_PID:-${REG_PROC[scale-up-$n]:-}} upstream=1
  [ -n "${TIMED_REG_PID:-}" ] && upstream=0
  sync
  local t0 t1 rc=0 r0=0 r1=0 k0="" k1=""
  if ((upstream)); then
    k0=$(scale_token_requests "$n")
  fi
  [ -n "$regpid" ] && r0=$(proc_ticks "$regpid")
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
  t1=$(date +%s%N)
  [ -n "$regpid" ] && r1=$(proc_ticks "$regpid")
  if ((upstream)); then
    k1=$(scale_token_requests "$n")
    [[ $k0 =~ ^[0-9]+$ && $k1 =~ ^[0-9]+$ ]] || die "scale $step N=$n: no token counts ($k0, $k1)"
  fi
  if [ "$rc" -ne 0 ]; then
    log "scale $step N=$n run $run FAILED (exit $rc); last lines of $base.err:"
    tail -n 20 "$base.err" >&2
    exit 1
  fi
  local wall rss cpu regcpu="" tokens=""
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$base.time")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$base.time")
  [ -n "$regpid" ] && regcpu=$(awk -v a="$r0" -v b="$r1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
  ((upstream)) && tokens=$((k1 - k0))
  scale_row "$step" "$n" "$run" "$wall" "$rss" "$cpu" "$regcpu" "$tokens"
  log "$(printf 'scale %-18s N=%-5s run %d: %7.2f s  %6.1f MiB peak RSS  %6.2f s CPU  %6s s registry CPU  %5s token requests' \
    "$step" "$n" "$run" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu" "${regcpu:--}" "${tokens:--}")"
}

# scale_prepare N: the workload of N images (generated once, kept), its facts as rows, its
# upstream registry, ferry's DOCKER_CONFIG and skopeo's sync YAML for it. Once per N.
scale_prepare() {
  local n=$1 dir=$BENCH_DIR/workload-scale-$1 up=scale-up-$1
  [ -n "${SCALE_READY[$n]:-}" ] && return
  untimed "scale-generate-$n" "$BENCH_ENV" generate --dir "$dir" --scale-images "$n"
  local wl=$dir/workload.json key
  [ "$(jq .images "$wl")" = "$n" ] && [ "$(wc -l <"$dir/images.txt")" = "$n" ] ||
    die "the scale workload in $dir does not hold $n images"
  for key in images repositories manifest_bytes unique_blobs unique_bytes; do
    scale_row workload "$n" "$key" "$(jq -r ".$key" "$wl")"
  done
  start_registry "$up" tls-token --dir "$dir"
  [ -n "${REG_PROC[$up]}" ] || die "no docker-registry process under registry $up"
  local host user pass
  host=$(reg "$up" host) user=$(reg "$up" username) pass=$(reg "$up" password)
  mkdir -p "$WORK/docker-$up"
  jq -n --arg h "$host" --arg a "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" \
    '{auths: {($h): {auth: $a}}}' >"$WORK/docker-$up/config.json"
  {
    echo "$host:"
    echo "  images:"
    sed 's/:\([^:]*\)$/ \1/' "$dir/images.txt" | sort -k1,1 -s | awk '
      $1 != prev { print "    " $1 ":"; prev = $1 }
      { print "      - \"" $2 "\"" }'
    echo "  credentials:"
    echo "    username: $user"
    echo "    password: $pass"
    echo "  cert-dir: $(reg "$up" cert_dir)"
  } >"$WORK/sync-$up.yaml"
  SCALE_READY[$n]=1
}

# scale_tags STORAGE: "REPOSITORY:TAG DIGEST" of every tag in a distribution storage, sorted.
scale_tags() {
  local repos=$1/docker/registry/v2/repositories
  [ -d "$repos" ] || return 0
  # shellcheck disable=SC2016
  find "$repos" -path '*/_manifests/tags/*/current/link' -print0 |
    xargs -0 -r awk -v p="$repos/" '{
      f = substr(FILENAME, length(p) + 1)
      sub(/\/_manifests\/tags\//, ":", f)
      sub(/\/current\/link$/, "", f)
      print f, $0
    }' | sort
}

# scale_check_target N NAME STEP: target NAME holds every image of N's workload, tagged with
# the workload's digest, and nothing else.
scale_check_target() {
  local n=$1 name=$2 step=$3 want got
  want=$(scale_tags "$BENCH_DIR/workload-scale-$n/storage")
  got=$(scale_tags "$WORK/targets/$name")
  [ "$(printf '%s\n' "$want" | wc -l)" = "$n" ] || die "$step: the workload of $n has $(printf '%s\n' "$want" | wc -l) tags"
  [ "$want" = "$got" ] ||
    die "$step: registry $name differs from the workload: $(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -n 5 | tr '\n' ' ')"
}

# scale_jq STEP N RUN FILTER: FILTER on the step's JSON output (stdout).
scale_jq() { jq -r "$4" "$WORK/logs/scale-$1-$2-$3.out"; }

# scale_check_import STEP N RUN: ferry import's summary has N images and no failure; a
# first import pushed all of them, a re-import nothing at all.
scale_check_import() {
  local step=$1 n=$2 run=$3
  [ "$(scale_jq "$@" '.failed | length')" = 0 ] || die "$step N=$n: ferry import failed: $(scale_jq "$@" '.failed[:3]')"
  if [ "$step" = ferry_reimport ]; then
    [ "$(scale_jq "$@" '.already_present')" = "$n" ] &&
      [ "$(scale_jq "$@" '.pushed + .blobs_pushed + .blobs_mounted')" = 0 ] ||
      die "$step N=$n: not a no-op: $(scale_jq "$@" '{pushed, already_present, blobs_pushed, blobs_mounted} | tostring')"
  else
    [ "$(scale_jq "$@" '.pushed')" = "$n" ] ||
      die "$step N=$n: ferry import pushed $(scale_jq "$@" .pushed), found $(scale_jq "$@" .already_present) of $n images"
  fi
}

# scale_skopeo_runs N RUN: whether the skopeo steps run for N in this run.
scale_skopeo_runs() { (($1 <= SCALE_SKOPEO_MAX && $2 <= SCALE_SKOPEO_RUNS)); }

# scale_one RUN N: every step of one run at one N.
scale_one() {
  local run=$1 n=$2
  scale_prepare "$n"
  local dir=$BENCH_DIR/workload-scale-$n up=scale-up-$n out=$WORK/out/scale-$n-$run
  local url ca
  url=$(reg "$up" url) ca=$(reg "$up" ca_file)
  rm -rf "$out" && mkdir -p "$out"
  # shellcheck disable=SC2207
  local jobs=($(ferry_jobs))
  local upstream=(env DOCKER_CONFIG="$WORK/docker-$up" "$FERRY")
  local from=(--upstream "docker.io=$url" --ca-file "$ca" "${jobs[@]}" --json)

  scale_timed ferry_lock "$n" "$run" "${upstream[@]}" lock --images "$dir/images.txt" "${from[@]}" -o "$out/images.lock"
  [ "$(scale_jq ferry_lock "$n" "$run" .locked)" = "$n" ] && [ "$(scale_jq ferry_lock "$n" "$run" '.failed | length')" = 0 ] ||
    die "ferry_lock N=$n: locked $(scale_jq ferry_lock "$n" "$run" .locked) of $n images"

  scale_timed ferry_export "$n" "$run" "${upstream[@]}" export --images "$dir/images.txt" "${from[@]}" -o "$out/bundle.tar"
  [ "$(scale_jq ferry_export "$n" "$run" .exported)" = "$n" ] && [ "$(scale_jq ferry_export "$n" "$run" '.failed | length')" = 0 ] ||
    die "ferry_export N=$n: exported $(scale_jq ferry_export "$n" "$run" .exported) of $n images"

  local with_skopeo=0
  if scale_skopeo_runs "$n" "$run"; then
    with_skopeo=1
    # Without --scoped, sync writes DEST/NAME:TAG (the namespace `scale/` dropped); writing
    # into sync/scale gives the import below the full names.
    mkdir -p "$out/sync/scale"
    clear_skopeo_cache
    scale_timed skopeo_sync_export "$n" "$run" "${SKOPEO[@]}" sync --all --preserve-digests --src yaml --dest dir \
      "$WORK/sync-$up.yaml" "$out/sync/scale"
    local got
    got=$(find "$out/sync/scale" -mindepth 2 -maxdepth 2 -name manifest.json | wc -l)
    [ "$got" = "$n" ] || die "skopeo_sync_export N=$n: skopeo wrote $got of $n images"
  fi

  local name=scale-ferry-$n-$run host
  start_target "$name"
  host=$(reg "$name" host)
  local target=(env DOCKER_CONFIG="$WORK/docker-$name" "$FERRY")
  local to=(--to "$host" --ca-file "$(reg "$name" ca_file)" "${jobs[@]}" --json)
  TIMED_REG_PID=${REG_PROC[$name]} scale_timed ferry_import "$n" "$run" "${target[@]}" import "$out/bundle.tar" "${to[@]}"
  scale_check_import ferry_import "$n" "$run"
  scale_check_target "$n" "$name" ferry_import
  TIMED_REG_PID=${REG_PROC[$name]} scale_timed ferry_reimport "$n" "$run" "${target[@]}" import "$out/bundle.tar" "${to[@]}"
  scale_check_import ferry_reimport "$n" "$run"
  TIMED_REG_PID=${REG_PROC[$name]} scale_timed ferry_verify "$n" "$run" "${target[@]}" verify --lock "$out/images.lock" "${to[@]}"
  [ "$(scale_jq ferry_verify "$n" "$run" .complete)" = true ] && [ "$(scale_jq ferry_verify "$n" "$run" .problems)" = 0 ] &&
    [ "$(scale_jq ferry_verify "$n" "$run" '.images | length')" = "$n" ] ||
    die "ferry_verify N=$n: $(scale_jq ferry_verify "$n" "$run" '{complete, problems, images: (.images | length)} | tostring')"
  stop_registry "$name"

  if ((with_skopeo)); then
    name=scale-skopeo-$n-$run
    start_target "$name"
    clear_skopeo_cache
    TIMED_REG_PID=${REG_PROC[$name]} scale_timed skopeo_sync_import "$n" "$run" "${SKOPEO[@]}" sync --all \
      --preserve-digests --scoped --src dir --dest docker --dest-cert-dir "$(reg "$name" cert_dir)" \
      --dest-creds "${TARGET_CREDS[$name]}" "$out/sync" "$(reg "$name" host)"
    scale_check_target "$n" "$name" skopeo_sync_import
    stop_registry "$name"
  fi
  rm -rf "$out"
}

phase_scale() {
  local run=$1 n
  if [ "$run" = 1 ]; then
    scale_row note "ferry_export exports from the image list (as users run it), not from the lock of ferry_lock"
    scale_row note "skopeo steps (skopeo sync, one image after the other) only for N <= $SCALE_SKOPEO_MAX, in the first $SCALE_SKOPEO_RUNS of $RUNS run(s)"
    scale_row note "upstream: TLS + token auth, one registry per N kept across runs; import targets: fresh TLS + htpasswd registries"
  fi
  for n in $SCALE_NS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE_N: $n is not an image count"
    scale_one "$run" "$n"
  done
  if [ "$run" = "$RUNS" ]; then
    for n in $SCALE_NS; do
      [ -n "${SCALE_READY[$n]:-}" ] && stop_registry "scale-up-$n"
      unset "SCALE_READY[$n]"
    done
  fi
  return 0
}
