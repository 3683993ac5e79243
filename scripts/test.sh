#!/usr/bin/env bash
# Runs every test of ferry. Installs what the tests need when it is missing:
# Debian packages for the real registry (CNCF distribution), the oracles (skopeo, umoci,
# oci-image-tool), htpasswd, GNU time, headless chromium (web pages), and the clients an RKE site pulls with (Docker Engine, podman,
# containerd's ctr) plus a static busybox to build a runnable image from. Safe to run on a
# fresh Debian/Ubuntu machine as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci oci-image-tool:oci-image-tool htpasswd:apache2-utils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
# Packages whose commands do not say whether they are there (busybox may be the dynamic one;
# `time` is also a shell keyword: GNU time, /usr/bin/time, measures peak RSS in tests/it).
for pkg in docker.io podman containerd busybox-static time chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# python3-cryptography signs as cosign and Fulcio do, for the signature tests
# (tests/it/signatures.rs, tests/it/sigstore/make.py): signatures ferry did not make.
python3 -c 'import cryptography.x509' 2>/dev/null || need+=(python3-cryptography)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The tests start their own Docker Engine (tests/it/serve.rs); keep the package's scripts
  # from starting the system service, which cannot run here (no systemd, no iptables).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
  fi
  echo "test.sh: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# moto, a local AWS emulator, for the ECR tests (tests/it/ecr.rs). The second try is for
# Debian's externally managed Python (PEP 668).
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "test.sh: installing moto[server]" >&2
  python3 -m pip install --quiet 'moto[server]>=5,<6' \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]>=5,<6'
fi

# prometheus_client's text parser is the independent oracle for serve's /metrics
# (tests/it/serve_status.rs); chromium (above) renders the status page and the HTML report.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "test.sh: installing prometheus_client" >&2
  python3 -m pip install --quiet 'prometheus_client>=0.17' \
    || python3 -m pip install --quiet --break-system-packages 'prometheus_client>=0.17'
fi

# Every test server binds 127.0.0.1; make sure no proxy setting sends loopback traffic elsewhere.
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost,::1${no_proxy:+,$no_proxy}"

cargo test --locked --workspace --all-targets "$@"

# The benchmark's arithmetic (medians, ratios, targets) has tests of its own.
python3 -m unittest discover -s scripts -p 'test_*.py'


# Fuzz smoke run (long runs with AddressSanitizer and a release build: fuzz/README.md). Each
# cargo-fuzz target runs for a few seconds over its seeds and regression inputs; a crash fails
# the script and leaves the input in fuzz/artifacts/. The smoke build is a debug build without
# sanitizer (ferry has no unsafe code; debug builds add overflow checks) because it compiles in
# under two minutes, where the instrumented release build takes five. libFuzzer needs
# nightly-only rustc flags: a rustup nightly toolchain when there is one, else the default
# toolchain with RUSTC_BOOTSTRAP=1. FERRY_SKIP_FUZZ=1 skips this; FERRY_FUZZ_SECONDS sets the
# time per target (default 10).
if [ "${FERRY_SKIP_FUZZ:-0}" != 1 ]; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "test.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
  fi
  if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
  else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
  fi
  for target in reference manifest bundle_reader archive_scan catalog parts serve_request sigstore; do
    mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
    (cd fuzz && "${fuzz[@]}" run --dev --sanitizer none "$target" "corpus/$target" "seeds/$target" "regressions/$target" \
      -- -max_total_time="${FERRY_FUZZ_SECONDS:-10}")
  done
fi
