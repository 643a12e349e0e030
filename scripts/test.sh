#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Every test of snapfs, from a fresh Debian 12 machine, in one command.
#
#   ./scripts/test.sh
#
# 1. installs the Debian packages that are missing (install-deps.sh test);
# 2. builds build/ and runs all suites: meson test -C build;
# 3. builds build-asan/ (-Db_sanitize=address,undefined -Dwerror=true) and
#    runs all suites again;
# 4. if clang is there and meson_options.txt has the 'fuzz' option, builds
#    build-fuzz/ (CC=clang -Dfuzz=true, with ASan and UBSan) and runs every
#    libFuzzer binary of build-fuzz/tests/fuzz/ for SNAPFS_FUZZ_SECONDS (20)
#    on its seed corpus (tests/fuzz/corpus/NAME/).
#
# Ends with one line "N passed, N failed" (", N skipped" when some were),
# counted over all runs from meson's testlog.json, and exits non-zero if
# anything failed. With CI=true a skipped mount test counts as failed.
#
# build/ is installed (snapfs in /usr/local/bin, its man page in
# /usr/local/share/man: README.md's commands run as typed) unless
# SNAPFS_NO_INSTALL=1.
#
# Environment: SNAPFS_SKIP_ASAN=1, SNAPFS_SKIP_FUZZ=1 leave those steps out
# (for a quick local run; CI runs everything); SNAPFS_FUZZ_SECONDS.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SNAPFS_ROOT"

passed=0
failed=0
skipped=0
failures=()

# count_testlog DIR LABEL: add the results of DIR/meson-logs/testlog.json.
count_testlog() {
	local log=$1/meson-logs/testlog.json label=$2 counts
	if [[ ! -s $log ]]; then
		echo "test.sh: $label: no $log: counting the run as one failure" >&2
		failed=$((failed + 1))
		failures+=("$label: no test log")
		return
	fi
	counts=$(python3 - "$log" "$label" "${CI:-}" <<'EOF'
import json, sys
log, label, ci = sys.argv[1], sys.argv[2], sys.argv[3] == "true"
p = f = s = 0
names = []
for line in open(log):
    line = line.strip()
    if not line:
        continue
    t = json.loads(line)
    result = t.get("result", "")
    # Newer meson writes "suite"; all write "name": "project:suite / test".
    suites = list(t.get("suite") or [])
    name = t.get("name", "")
    if " / " in name:
        suites += name.split(" / ", 1)[0].split(":", 1)[-1].split("+")
    is_mount = any(x == "mount" or x.endswith(":mount") for x in suites)
    if result == "OK":
        p += 1
    elif result == "SKIP" and not (ci and is_mount):
        s += 1
    else:
        f += 1
        why = result if result != "SKIP" else "SKIP (a mount test may not skip in CI)"
        names.append(f"{label}: {t.get('name')} {why}")
print(p, f, s)
for n in names:
    print(n)
EOF
	)
	local first rest
	first=$(head -n1 <<<"$counts")
	rest=$(tail -n +2 <<<"$counts")
	read -r p f s <<<"$first"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [[ -n $rest ]]; then
		while IFS= read -r line; do failures+=("$line"); done <<<"$rest"
	fi
}

# build_or_fail DIR LABEL [meson options]: build; a failed build counts as
# one failed test. Returns non-zero if the build failed.
build_or_fail() {
	local dir=$1 label=$2
	shift 2
	if build "$dir" "$@"; then
		return 0
	fi
	echo "test.sh: $label: build failed" >&2
	failed=$((failed + 1))
	failures+=("$label: build failed")
	return 1
}

# run_suites DIR LABEL [meson test options]
run_suites() {
	local dir=$1 label=$2
	shift 2
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --print-errorlogs "$@" || true
	count_testlog "$dir" "$label"
}

say "Installing missing Debian packages"
./scripts/install-deps.sh test

# Sanitizer findings must fail the process with a code no test expects.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=99:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}

say "Build and test: build/"
if build_or_fail build build; then
	install_snapfs build
	run_suites build build
fi

if [[ ${SNAPFS_SKIP_ASAN:-} != 1 ]]; then
	say "Build and test with AddressSanitizer and UBSan: build-asan/"
	if build_or_fail build-asan build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror=true; then
		run_suites build-asan build-asan --timeout-multiplier 3
	fi
fi

if [[ ${SNAPFS_SKIP_FUZZ:-} != 1 ]] && command -v clang >/dev/null &&
	grep -q "option('fuzz'" meson_options.txt 2>/dev/null; then
	say "Fuzzing: build-fuzz/"
	seconds=${SNAPFS_FUZZ_SECONDS:-20}
	if CC=clang build_or_fail build-fuzz build-fuzz -Dfuzz=true -Db_lundef=false \
		-Db_sanitize=address,undefined; then
		shopt -s nullglob
		ran=0
		for bin in build-fuzz/tests/fuzz/*; do
			[[ -f $bin && -x $bin ]] || continue
			# The libFuzzer binaries (they know -max_total_time); the
			# plain corpus replayers are run by meson test already.
			grep -qa -- 'max_total_time' "$bin" || continue
			name=$(basename "$bin")
			base=${name%-libfuzzer}
			base=${base%_fuzzer}
			corpus=""
			for d in "tests/fuzz/corpus/$base" "tests/fuzz/corpus/${base#fuzz_}"; do
				[[ -d $d ]] && corpus=$d && break
			done
			out=build-fuzz/corpus-out/$base
			artifacts=build-fuzz/artifacts/$base
			mkdir -p "$out" "$artifacts"
			echo "--- $name for $seconds s${corpus:+ on $corpus}"
			ran=$((ran + 1))
			if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix="$artifacts/" -print_final_stats=1 \
				"$out" ${corpus:+"$corpus"} >"build-fuzz/$base.log" 2>&1; then
				tail -n 5 "build-fuzz/$base.log"
				passed=$((passed + 1))
			else
				tail -n 60 "build-fuzz/$base.log"
				echo "test.sh: $name failed; artifacts in $artifacts/" >&2
				failed=$((failed + 1))
				failures+=("fuzz: $name (see build-fuzz/$base.log)")
			fi
		done
		if ((ran == 0)); then
			echo "no libFuzzer targets in build-fuzz/tests/fuzz/"
		fi
	fi
fi

say "Summary"
for f in "${failures[@]}"; do
	echo "FAILED: $f"
done
summary="$passed passed, $failed failed"
if ((skipped > 0)); then
	summary+=", $skipped skipped"
fi
echo "$summary"
((failed == 0))
