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

rounds=3
big_mib=2048
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --big-mib) big_mib=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=${IMAGE_TRANSMIT:-$repo/target/release/image-transmit}
tool_timeout=${BENCH_TIMEOUT:-900}
if [ "$(id -u)" = 0 ]; then
    skopeo_cache=/var/lib/containers/cache/blob-info-cache-v1.boltdb
else
    skopeo_cache=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb
fi
images=8

for need in docker-registry skopeo python3 curl /usr/bin/time timeout; do
    command -v "$need" >/dev/null || { echo "missing: $need (apt-get install docker-registry skopeo time curl)" >&2; exit 2; }
done
if [ ! -x "$bin" ]; then
    echo "building $bin" >&2
    (cd "$repo" && cargo build --release -p image-transmit) >&2
fi

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/copy-bench.XXXXXX")
results=$work/results.tsv
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME: starts a registry with an empty root; sets $reg_port, $reg_pid, $reg_log.
start_registry() {
    local name=$1 dir=$work/registry-$1 tries
    rm -rf "$dir"
    mkdir -p "$dir/root"
    reg_port=$(free_port)
    reg_log=$dir/access.log
    cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $dir/root}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$reg_port}
EOF
    docker-registry serve "$dir/config.yml" >"$reg_log" 2>&1 &
    reg_pid=$!
    pids+=("$reg_pid")
    for tries in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$reg_port/v2/" 2>/dev/null; then
            return 0
        fi
        kill -0 "$reg_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "registry $name did not start:" >&2
    cat "$reg_log" >&2
    exit 1
}

# stop_registry PID NAME: stops that registry and deletes its storage.
stop_registry() {
    local pid=$1 name=$2 kept=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    pids=("${kept[@]}")
    rm -rf "$work/registry-$name/root"
}

# Counts the requests in the access-log lines after line $2 of file $1 by method and kind:
# "HEAD-blob=26 PUT-manifest=8". The registry writes one access-log line per request.
count_requests() {
    tail -n +"$(($2 + 1))" "$1" | { grep -oE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/[^ ]+' || true; } |
        awk '{ sub(/^"/, "", $1); kind = ($2 ~ /\/blobs\/uploads\//) ? "upload" : ($2 ~ /\/blobs\//) ? "blob" : ($2 ~ /\/manifests\//) ? "manifest" : "other"; n[$1 "-" kind]++ }
             END { for (k in n) printf "%s=%d ", k, n[k] }' | xargs -n1 | sort | xargs
}

manifest_digest() { # REGISTRY_PORT REPO TAG
    curl -fsS -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://127.0.0.1:$1/v2/$2/manifests/$3" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

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
    local out=$work/$name.out timing=$work/$name.time rc=0 src_before dst_before cmd
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
    local started=$EPOCHREALTIME
    (cd "$work" && timeout -k 10 "$tool_timeout" /usr/bin/time -f '%U %S %M' -o "$timing" \
        "${cmd[@]}") >"$out" 2>&1 </dev/null || rc=$?
    # Wall time to the millisecond (GNU time's %e has 10 ms steps, too coarse for a re-run).
    local wall user sys rss src_requests dst_requests
    wall=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' \
        "$started" "$EPOCHREALTIME")
    read -r user sys rss < <(tail -n 1 "$timing" 2>/dev/null || echo "- - -")
    src_requests=$(count_requests "$src_log" "$src_before")
    dst_requests=$(count_requests "$dst_log" "$dst_before")
    local checked=skipped
    if [ "$rc" = 0 ]; then checked=$(verify "$dst" "${repos[@]}"); fi
    if [ "$rc" != 0 ] || [ "$checked" != ok ]; then
        {
            echo "!! $tool $scenario round $round: exit $rc, verify $checked"
            echo "!! command: ${cmd[*]}"
            tail -n 20 "$out" | sed 's/^/!!   /'
        } >&2
        echo "$tool $scenario round $round: exit $rc, verify $checked; command: ${cmd[*]}" >>"$work/problems.txt"
        tail -n 20 "$out" | sed 's/^/    /' >>"$work/problems.txt"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$round" "$rc" "$checked" \
        "$wall" "$user" "$sys" "$rss" "$src_requests" "$dst_requests" >>"$results"
}

# ---------------------------------------------------------------------------------------------
log "scratch directory $work"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "image-transmit: $("$bin" --version 2>&1 | head -n 1), binary built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC'); repository HEAD $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "skopeo: $(skopeo --version)"
    echo "registry: $(docker-registry --version 2>&1 | head -n 1)"
} >"$work/machine.txt"

log "generating images (8 x shared bases + own layers, and one ${big_mib} MiB layer)"
python3 "$here/make-images.py" "$work/oci" --images "$images" --big-mib "$big_mib"

start_registry source
src_port=$reg_port
src_pid=$reg_pid
src_log=$reg_log

set_repos=()
{
    echo "127.0.0.1:$src_port:"
    echo "  tls-verify: false"
    echo "  images:"
    for i in $(seq 0 $((images - 1))); do
        echo "    team/app$i: [latest]"
        set_repos+=("team/app$i")
    done
} >"$work/team.sync.yaml"
printf '%s:latest\n' "${set_repos[@]}" >"$work/team.list"
for single in small big; do
    printf '127.0.0.1:%s:\n  tls-verify: false\n  images:\n    %s/app: [latest]\n' "$src_port" "$single" \
        >"$work/$single.sync.yaml"
    echo "$single/app:latest" >"$work/$single.list"
done

log "pushing to the source registry (127.0.0.1:$src_port)"
for repo_name in "${set_repos[@]}"; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:${repo_name#team/}" \
        "docker://127.0.0.1:$src_port/$repo_name:latest"
done
skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:small" "docker://127.0.0.1:$src_port/small/app:latest"
if [ "$big_mib" -gt 0 ]; then
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:big" "docker://127.0.0.1:$src_port/big/app:latest"
fi
rm -rf "$work/oci" # the source registry has its own copy; halve the disk used

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

singles=(small)
[ "$big_mib" -gt 0 ] && singles+=(big)
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
