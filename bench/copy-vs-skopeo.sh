#!/usr/bin/env bash
# Benchmark, not a test: times `image-transmit copy` against `skopeo sync --src yaml` on a
# synthetic image set between two local registries, and prints a markdown table of medians.
#
#   bench/copy-vs-skopeo.sh [--rounds N] [--big-mib N] [--keep]
#
# What it does (docs/benchmarks.md says why):
#   1. writes 8 images (512 MiB of unique layers, shared bases), one image with a single 96 MiB
#      layer and one with a single --big-mib layer into an OCI layout (bench/make-images.py) and
#      pushes them with skopeo to a source registry it starts on a free loopback port;
#   2. each round, for each tool in interleaved order (A B, B A, A B, …): a fresh empty target
#      registry, a timed copy of the set ("fresh"), then a timed copy again onto that populated
#      target ("re-run"), then the target is stopped and deleted;
#   3. the scaling run: the 96 MiB-layer image, then the big one, each alone to a fresh target,
#      once per tool (same single blob stream, 21x the bytes: peak RSS should not move);
#   4. prints the table (bench/summarize.py) from results.tsv; exits 1 if any run failed or
#      left a manifest digest different from the source's (listed under "Problems").
# Each timing covers the client process only, never the registries: wall time from the shell's
# clock (ms), user+sys CPU and peak RSS from GNU time. After each run the target's manifest
# digests are checked against the source's, and the registries' access logs give the requests
# the run sent (by method and kind). skopeo's blob-info cache is deleted before every skopeo
# timing, otherwise it cross-repo-mounts blobs it remembers from earlier runs.
#
# Environment: IMAGE_TRANSMIT (binary; default target/release/image-transmit, built if missing),
# BENCH_DIR (parent of the scratch directory; default $TMPDIR or /tmp), BENCH_TIMEOUT (seconds
# per tool run, default 900). Needs: docker-registry (CNCF distribution), skopeo, python3, curl,
# GNU time (/usr/bin/time).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

parse_args "$@"
require docker-registry skopeo python3 curl /usr/bin/time timeout
make_scratch copy-bench

# verify DST_PORT REPO…: "ok" when every REPO:latest has the source's manifest digest.
verify() {
    local dst=$1 bad=() r
    shift
    for r in "$@"; do
        [ "$(manifest_digest "$dst" "$r" latest || true)" = "$(manifest_digest "$src_port" "$r" latest)" ] ||
            bad+=("$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "MISMATCH:${bad[*]}"; fi
}

# measure SCENARIO TOOL ROUND DST_PORT SET: one timed run, appended to results.tsv.
measure() {
    local scenario=$1 tool=$2 round=$3 dst=$4 set=$5 name=$2-$1-r$3
    local out=$work/$name.out timing=$work/$name.time src_before dst_before cmd
    local repos=("$set/app")
    [ "$set" = team ] && repos=("${set_repos[@]}")
    case "$tool" in
        image-transmit)
            cmd=("$bin" copy --from "http://127.0.0.1:$src_port" --to "http://127.0.0.1:$dst"
                 --list "$work/$set.list") ;;
        skopeo)
            rm -f "$skopeo_cache"
            cmd=(skopeo sync --src yaml --dest docker --dest-tls-verify=false
                 "$work/$set.sync.yaml" "127.0.0.1:$dst/$set") ;;
    esac
    src_before=$(wc -l <"$src_log")
    dst_before=$(wc -l <"$dst_log")
    log "$scenario round $round: $tool"
    timed_run "$work" "$out" "$timing" "${cmd[@]}"
    local src_requests dst_requests checked=skipped
    src_requests=$(count_requests "$src_log" "$src_before")
    dst_requests=$(count_requests "$dst_log" "$dst_before")
    if [ "$run_rc" = 0 ]; then checked=$(verify "$dst" "${repos[@]}"); fi
    record_run "$scenario" "$tool" "$round" "$checked" "$src_requests" "$dst_requests" "$out" "${cmd[@]}"
}

# ---------------------------------------------------------------------------------------------
log "scratch directory $work"
describe_machine "" >"$work/machine.txt"

setup_source
printf '%s:latest\n' "${set_repos[@]}" >"$work/team.list"
for single in small big; do
    printf '127.0.0.1:%s:\n  tls-verify: false\n  images:\n    %s/app: [latest]\n' "$src_port" "$single" \
        >"$work/$single.sync.yaml"
    echo "$single/app:latest" >"$work/$single.list"
done

: >"$results"
: >"$work/problems.txt"
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order=(image-transmit skopeo); else order=(skopeo image-transmit); fi
    for tool in "${order[@]}"; do
        start_registry "target-$tool-r$round"
        dst_port=$reg_port dst_pid=$reg_pid dst_log=$reg_log
        measure fresh "$tool" "$round" "$dst_port" team
        measure rerun "$tool" "$round" "$dst_port" team
        stop_registry "$dst_pid" "target-$tool-r$round"
    done
done

for single in "${singles[@]}"; do
    for tool in image-transmit skopeo; do
        start_registry "target-$tool-$single"
        dst_port=$reg_port dst_pid=$reg_pid dst_log=$reg_log
        measure "$single" "$tool" 1 "$dst_port" "$single"
        stop_registry "$dst_pid" "target-$tool-$single"
    done
done

python3 "$here/summarize.py" "$results" "$work/machine.txt" "$work/problems.txt" --big-mib "$big_mib"
if [ "$keep" = 1 ]; then
    log "raw results: $results; tool output: $work/*.out"
fi
if [ -s "$work/problems.txt" ]; then
    log "some runs failed or left wrong manifests: see Problems above"
    exit 1
fi
