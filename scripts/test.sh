#!/usr/bin/env bash
# Installs what mamori's tests need and runs the whole suite.
# Works on a fresh Debian machine with only Rust installed; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive as real peers. The kernel (issue #3) needs none beyond Rust;
# measure families add theirs here (kamailio, sip-tester, unbound, freeradius-utils, bird2, …).
#   kamailio                 the SIP proxy of examples/kamailio/kamailio.cfg (tm, sl, rr, dialog, auth,
#                            htable, db_text, usrloc, registrar, xhttp, jsonrpcs, … modules)
#   kamailio-extra-modules   its evapi and jansson modules (live call events to mamori)
#   sip-tester               sipp, which places the calls in crates/kamailio and crates/mamori tests
#   freeradius-utils         radclient, the RADIUS accounting peer of crates/attribution tests
#   python3-aiosmtpd         the SMTP server notifications are delivered to in crates/mamori/tests/notify.rs
#   unbound                  the resolver of crates/dns tests (dnstap out, RPZ in, inline filter upstream)
#   softflowd                the NetFlow v9 exporter of crates/flow/tests/softflowd.rs (reads a generated pcap)
#   pmacct                   pmacctd, the sFlow v5 exporter (sfprobe plugin) of crates/flow/tests/pmacct.rs
#   bird2                    the router receiving RTBH and FlowSpec in crates/flow/tests/bird.rs
#   gobgpd                   the BGP speaker (gobgpd and its gobgp client) mamori announces through
#   chromium chromium-driver headless Chromium and chromedriver (WebDriver) of crates/mamori/tests/console_e2e.rs
#   fonts-ipafont-gothic     a Japanese font, so that test's screenshots of the (Japanese) console are legible
PACKAGES=(kamailio kamailio-extra-modules sip-tester freeradius-utils python3-aiosmtpd unbound softflowd pmacct bird2 gobgpd chromium chromium-driver fonts-ipafont-gothic)

if ((${#PACKAGES[@]})); then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# Tests with real peers (Kamailio, sipp) skip loudly when the programs are missing on a
# developer's machine; here they must run, so a missing peer fails the suite.
export MAMORI_REQUIRE_PEERS=1

# Two cores: keep parallelism explicit so builds don't thrash memory.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-off build gains nothing from incremental caches, which would roughly double the target
# directory on a CI machine's limited disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "==> disk free before the build: $(df -h --output=avail . | tail -1 | tr -d ' ')"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test (workspace)"
cargo test --workspace --locked
