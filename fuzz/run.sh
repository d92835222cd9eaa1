#!/usr/bin/env bash
# Build one fuzz target of the configuration front end and run it for a bounded
# time (see docs/fuzzing.md).
#
#   fuzz/run.sh [TARGET] [SECONDS] [-- LIBFUZZER FLAGS...]
#
# TARGET defaults to config_front_end, SECONDS to 60. The seed corpus is
# generated from examples/, modules/ and tests/invalid/ on every run; what the
# fuzzer learns accumulates in fuzz/corpus/TARGET (not committed). A crash is
# saved in fuzz/artifacts/TARGET/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-config_front_end}
seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift

# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --version 0.13.2

# Build against the dependency versions the main crate is tested with.
cp ../Cargo.lock Cargo.lock

seeds=seeds/$target
rm -rf "$seeds"
mkdir -p "$seeds" "corpus/$target"
case "$target" in
  config_front_end)
    # Every configuration file, one seed each.
    find ../examples ../modules ../tests/invalid -name '*.hcl' -type f | sort | while read -r file; do
      name=${file#../}
      cp "$file" "$seeds/${name//\//_}"
    done
    ;;
  config_files_and_vars)
    # Every configuration directory as one input: "#--- NAME" sections.
    find ../examples ../modules ../tests/invalid -name '*.hcl' -type f -printf '%h\n' | sort -u | while read -r dir; do
      name=${dir#../}
      seed="$seeds/${name//\//_}"
      : >"$seed"
      for file in "$dir"/*.hcl; do
        printf '#--- %s\n' "${file##*/}" >>"$seed"
        cat "$file" >>"$seed"
        echo >>"$seed"
      done
      if [ -f "$dir/args.txt" ]; then
        echo '#--- -var' >>"$seed"
        sed 's/^-var //' "$dir/args.txt" >>"$seed"
      fi
    done
    ;;
  state_and_plan)
    # Every saved-state fixture, once per environment byte, behind the byte
    # that picks its example (0 quickstart, 1 vm-myapp, 2 ecs-workshop).
    find ../tests/fixtures/states -name '*.json' -type f | sort | while read -r file; do
      case "$file" in
        */quickstart-*) example='\000' ;;
        */vm-myapp-*) example='\001' ;;
        */ecs-workshop-*) example='\002' ;;
        *) continue ;;
      esac
      name=${file#../tests/fixtures/states/}
      for environment in 0 1 2 3; do
        { printf "$example\\00$environment"; cat "$file"; } >"$seeds/${name//\//_}.$environment"
      done
    done
    ;;
  *) echo "unknown fuzz target $target" >&2; exit 2 ;;
esac

# No sanitizer: the crate has no unsafe code of its own, and panics, stack
# overflows and timeouts are caught without one (and the build is faster).
cargo fuzz run -s none "$target" "corpus/$target" "$seeds" -- \
  -max_total_time="$seconds" -dict=hcl.dict -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@"
