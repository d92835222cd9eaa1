#!/usr/bin/env bash
# Plan benchmark: 1,000 services x 4 environments x 10 hosts (40,000 host placements).
#
#   tests/bench/run.sh              # build, generate, measure (hyperfine + peak RSS)
#   PROFILE=1 tests/bench/run.sh    # also a perf profile of validate, plan -json, plan human
#
# Environment knobs: SERVICES (1000), HOSTS (10, per environment), RUNS (10),
# WARMUP (2), PROFILE (0), KEEP (0: delete the generated configurations),
# SLIPWAY_BIN (measure this binary instead of building one),
# OUT (directory for the hyperfine exports; default: inside the temp dir, so
# deleted at the end unless KEEP=1).
#
# Generated configurations go to a temporary directory, never into the repository.
# `slipway plan` exits 2 when there are changes: the measured commands treat 2 as
# success and anything else as a failure.
set -euo pipefail

cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-1000}
HOSTS=${HOSTS:-10}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}

section() { printf '\n== %s\n' "$*"; }

need_tool() { # need_tool COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2 (apt-get)" >&2
    apt-get install -y -qq "$2" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; } || true
  fi
  command -v "$1" >/dev/null 2>&1
}

section "machine"
echo "nproc: $(nproc)"
grep -m1 'model name' /proc/cpuinfo | sed 's/^model name\s*:\s*/cpu: /' || true
awk '/MemTotal/ { printf "memory: %.1f GiB\n", $2 / 1048576 }' /proc/meminfo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (should be near 0 while measuring)"
echo "slipway: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in src/')"

section "build"
if [ -n "${SLIPWAY_BIN:-}" ]; then
  BIN=$SLIPWAY_BIN
  echo "measuring $BIN (SLIPWAY_BIN), not building"
else
  build_log=$(mktemp)
  if ! cargo build --release --locked >"$build_log" 2>&1; then
    cat "$build_log" >&2
    rm -f "$build_log"
    exit 1
  fi
  tail -n 1 "$build_log"
  rm -f "$build_log"
  case "${CARGO_TARGET_DIR:-target}" in
    /*) BIN="$CARGO_TARGET_DIR/release/slipway" ;;
    *) BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/slipway" ;;
  esac
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
"$BIN" --version 2>/dev/null || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench.XXXXXX")
if [ "$KEEP" = 1 ]; then
  echo "keeping $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"

section "generate"
python3 tests/bench/generate_config.py "$WORK/fresh" --services "$SERVICES" --hosts "$HOSTS" --state none
python3 tests/bench/generate_config.py "$WORK/half-applied" --services "$SERVICES" --hosts "$HOSTS" --state half
for d in fresh half-applied; do
  printf '%s: %s of *.hcl in %s files, %s of state in %s files\n' "$d" \
    "$(cat "$WORK/$d"/*.hcl | wc -c | awk '{ printf "%.1f MB", $1 / 1e6 }')" \
    "$(ls "$WORK/$d"/*.hcl | wc -l)" \
    "$(cat "$WORK/$d"/state/*.json 2>/dev/null | wc -c | awk '{ printf "%.1f MB", $1 / 1e6 }')" \
    "$(ls "$WORK/$d"/state/*.json 2>/dev/null | wc -l)"
done

# The commands measured: NAME|COMMAND|EXPECTED_EXIT
commands() {
  local d
  for d in fresh half-applied; do
    local dir="$WORK/$d" vars="-var-file $WORK/$d/vars/bench.vars.hcl"
    echo "validate ($d)|$BIN validate $dir $vars|0"
    echo "plan -json ($d)|$BIN plan $dir $vars -json|2"
    echo "plan human ($d)|$BIN plan $dir $vars -no-color|2"
  done
}

section "sanity"
# The plans must be what the generator promises, or the timings mean nothing.
check_summary() { # DIR EXPECTED_SUMMARY_JSON
  local status=0
  "$BIN" plan "$1" -var-file "$1/vars/bench.vars.hcl" -json >"$WORK/plan.json" || status=$?
  [ "$status" = 2 ] || { echo "plan $1 exited $status, expected 2" >&2; exit 1; }
  python3 - "$WORK/plan.json" "$2" "$(basename "$1")" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))
want = json.loads(sys.argv[2])
got = {k: plan["summary"][k] for k in want}
hosts = sum(len(step.get("hosts", []))
            for wave in plan["schedule"]["waves"] for d in wave["deployments"] for step in d["steps"])
print(f"{sys.argv[3]}: summary {plan['summary']}, "
      f"{len(plan['schedule']['waves'])} waves, {hosts} scheduled host updates, "
      f"{len(open(sys.argv[1]).read()) / 1e6:.1f} MB of JSON")
if got != want:
    sys.exit(f"unexpected summary: {got}, want {want}")
EOF
}
check_summary "$WORK/fresh" "{\"create\": $((SERVICES * 4)), \"update\": 0, \"no_op\": 0}"
check_summary "$WORK/half-applied" "{\"create\": 0, \"update\": $((SERVICES * 2)), \"no_op\": $((SERVICES * 2))}"

section "wall time"
if need_tool hyperfine hyperfine; then
  args=()
  while IFS='|' read -r name cmd code; do
    args+=(--command-name "$name" "$cmd >/dev/null; [ \$? -eq $code ]")
  done < <(commands)
  hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-markdown "$OUT/hyperfine.md" --export-json "$OUT/hyperfine.json" "${args[@]}"
  echo
  cat "$OUT/hyperfine.md"
else
  echo "hyperfine not found: plain loop of $RUNS runs after $WARMUP warm-up runs" >&2
  while IFS='|' read -r name cmd code; do
    for _ in $(seq "$WARMUP"); do sh -c "$cmd >/dev/null" || true; done
    times=()
    for _ in $(seq "$RUNS"); do
      start=$(date +%s.%N)
      status=0
      sh -c "$cmd >/dev/null" || status=$?
      end=$(date +%s.%N)
      [ "$status" = "$code" ] || { echo "$name exited $status" >&2; exit 1; }
      times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
    done
    python3 -c 'import statistics as s, sys
t = [float(x) for x in sys.argv[2:]]
print(f"{sys.argv[1]:<28} mean {s.mean(t):.3f} s ± {s.stdev(t):.3f}  min {min(t):.3f}  max {max(t):.3f}")' "$name" "${times[@]}"
  done < <(commands)
fi

section "peak memory (maximum resident set size, one run each)"
if need_tool /usr/bin/time time; then
  while IFS='|' read -r name cmd code; do
    status=0
    /usr/bin/time -v sh -c "exec $cmd >/dev/null" 2>"$WORK/time.txt" || status=$?
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
    printf '%-28s %6.1f MB   (exit %s)\n' "$name" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
      "$(awk -F': ' '/Exit status/ { print $2 }' "$WORK/time.txt")"
  done < <(commands)
else
  echo "/usr/bin/time not found (Debian package: time); skipped"
fi

if [ "$PROFILE" = 1 ]; then
  section "profile"
  if need_tool perf linux-perf; then
    for name in validate plan-json plan-human; do
      case $name in
        validate) sub=(validate) ;;
        plan-json) sub=(plan -json) ;;
        plan-human) sub=(plan -no-color) ;;
      esac
      perf record -q -F 999 -g --call-graph dwarf,16384 -o "$WORK/$name.perf" \
        "$BIN" "${sub[@]}" "$WORK/half-applied" -var-file "$WORK/half-applied/vars/bench.vars.hcl" >/dev/null 2>&1 || true
      echo "-- $name (half-applied): inclusive share of samples, slipway functions and major callees"
      perf report -i "$WORK/$name.perf" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]' | grep -v '(inlined)' |
        grep -E 'slipway::|parse_template|hcl::eval::impls|serde_json::de|serde_json::ser|similar::|drop_in_place<slipway|RawBlock as core::clone|malloc|_int_free' |
        awk '{ sym = ""; for (i = 4; i <= NF; i++) if ($i != "-") sym = sym " " $i; printf "  %7s %7s %s\n", $1, $2, sym }' |
        head -n 30
    done
  else
    echo "perf not found; skipped"
  fi
fi

echo
echo "results: $OUT"
