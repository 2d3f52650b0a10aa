# Sourced by copy-vs-skopeo.sh and bundle-vs-skopeo.sh (`. "$(dirname "$0")/lib.sh"`), never run
# on its own: the setup both benchmarks share, kept in one place so they time and check their
# runs the same way. Options and arguments (parse_args), the scratch directory and its cleanup,
# the registries (start_registry, stop_registry, their access logs and manifest digests), the
# synthetic image set pushed to a source registry (setup_source), machine.txt (describe_machine)
# and one timed run recorded in results.tsv (timed_run, record_run). The calling script sets
# `set -euo pipefail` and, in its header comment, documents what it measures.

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

# parse_args "$@": sets $rounds, $big_mib, $keep; --help prints the calling script's header.
parse_args() {
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
}

# require COMMAND…: exits 2 unless every COMMAND is installed; then builds $bin if it is missing.
require() {
    local need
    for need in "$@"; do
        command -v "$need" >/dev/null || { echo "missing: $need (apt-get install docker-registry skopeo time curl)" >&2; exit 2; }
    done
    if [ ! -x "$bin" ]; then
        echo "building $bin" >&2
        (cd "$repo" && cargo build --release -p image-transmit) >&2
    fi
}

# make_scratch PREFIX: creates the scratch directory $work (deleted on exit unless --keep) and
# sets $results; registries started later are stopped on exit.
make_scratch() {
    work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    results=$work/results.tsv
    pids=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

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

# stop_registry PID NAME: stops that registry and deletes its storage (its access log and config
# stay, for --keep).
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

# describe_machine BINARY_NOTE [LINE…]: the lines of machine.txt; LINEs go after the kernel,
# BINARY_NOTE at the end of the image-transmit line.
describe_machine() {
    local note=$1
    shift
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
    echo "image-transmit: $("$bin" --version 2>&1 | head -n 1), binary built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC'); repository HEAD $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$note"
    echo "skopeo: $(skopeo --version)"
    echo "registry: $(docker-registry --version 2>&1 | head -n 1)"
}

# setup_source: writes the image set (bench/make-images.py: $images images of shared bases and
# their own layers, `small` with the 96 MiB layer, `big` with one --big-mib layer), starts the
# source registry ($src_port, $src_pid, $src_log) and pushes the set there as team/app0…
# ($set_repos, listed in $work/team.sync.yaml for skopeo sync) and small/app, big/app
# ($singles: big only when --big-mib is above 0).
setup_source() {
    local i repo_name single
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
    singles=(small)
    if [ "$big_mib" -gt 0 ]; then singles+=(big); fi

    log "pushing to the source registry (127.0.0.1:$src_port)"
    for repo_name in "${set_repos[@]}"; do
        skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:${repo_name#team/}" \
            "docker://127.0.0.1:$src_port/$repo_name:latest"
    done
    for single in "${singles[@]}"; do
        skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:$single" "docker://127.0.0.1:$src_port/$single/app:latest"
    done
    rm -rf "$work/oci" # the source registry has its own copy; halve the disk used
}

# timed_run DIR OUT TIMING CMD…: runs CMD in DIR (stdin /dev/null, stdout and stderr to OUT)
# under the timeout and GNU time (output to TIMING); sets $run_rc, $run_wall (s), $run_user and
# $run_sys (s) and $run_rss (peak KiB), the last three "-" when GNU time wrote nothing. Only the
# client process(es) are timed. Variables assigned before the call (TMPDIR=… timed_run …) reach CMD.
timed_run() {
    local dir=$1 out=$2 timing=$3 started
    shift 3
    run_rc=0
    started=$EPOCHREALTIME
    (cd "$dir" && timeout -k 10 "$tool_timeout" /usr/bin/time -f '%U %S %M' -o "$timing" \
        "$@") >"$out" 2>&1 </dev/null || run_rc=$?
    # Wall time to the millisecond (GNU time's %e has 10 ms steps, too coarse for a re-run).
    run_wall=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' \
        "$started" "$EPOCHREALTIME")
    read -r run_user run_sys run_rss < <(tail -n 1 "$timing" 2>/dev/null || echo "- - -")
}

# record_run SCENARIO TOOL ROUND CHECKED SRC_REQUESTS DST_REQUESTS OUT CMD…: appends the run
# timed_run just made to results.tsv; when it failed or CHECKED is not "ok", also says so on
# stderr and in problems.txt, with the command and the last lines of its output OUT.
record_run() {
    local scenario=$1 tool=$2 round=$3 checked=$4 src_requests=$5 dst_requests=$6 out=$7
    shift 7
    if [ "$run_rc" != 0 ] || [ "$checked" != ok ]; then
        {
            echo "!! $tool $scenario round $round: exit $run_rc, verify $checked"
            echo "!! command: $*"
            tail -n 20 "$out" | sed 's/^/!!   /'
        } >&2
        echo "$tool $scenario round $round: exit $run_rc, verify $checked; command: $*" >>"$work/problems.txt"
        tail -n 20 "$out" | sed 's/^/    /' >>"$work/problems.txt"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$round" "$run_rc" "$checked" \
        "$run_wall" "$run_user" "$run_sys" "$run_rss" "$src_requests" "$dst_requests" >>"$results"
}
