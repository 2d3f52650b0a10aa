#!/usr/bin/env bash
# Benchmark, not a test: image-transmit against skopeo across a long, narrow link, and what a
# connection-cutting proxy costs each, with figures for docs/benchmarks.md.
#
#   sudo bench/wan.sh [--rounds N] [--rate MBIT] [--delay-ms MS] [--cut-mib N] [--only LIST] [--keep]
#
# The link: two CNCF registries (source and target) run in a network namespace of their own,
# reached over a veth pair whose both ends are shaped with `tc tbf` to --rate Mbit/s (default
# 200); in front of each, on the host, `wan-proxy` (crates/testkit/src/bin/wan-proxy.rs, built
# if missing) holds every byte --delay-ms (default 25) in each direction, so a round trip costs
# 50 ms. Both tools talk to the proxies only, so downloads and uploads cross the link.
#
# Scenarios (--only takes a comma-separated subset; each round runs the tools in alternating
# order, every copy to a freshly emptied target):
#   large  8 images, 513 MiB of unique layers (bench/make-images.py's set): image-transmit copy
#          against skopeo sync, and the link's own limit (the bytes at --rate).
#   small  60 images of an 80 KiB layer each on a shared 2 MiB base: only round trips count.
#   cut    one image of a single --cut-mib MiB layer (default 64) through proxies that close
#          every connection after 16 MiB: image-transmit copy and upload (of a bundle saved
#          before), each also with --chunk-size 8M, save (downloads alone) and skopeo copy;
#          the bytes each moved across the link, as a multiple of the layer.
#   rate   the large set with --limit-rate 50M on a link opened to 1 Gbit/s: the rate held.
# Each run is checked: the target's manifest digests must equal the source's. Peak RSS comes
# from GNU time, bytes from the proxies' counters.
#
# Needs root (ip netns, tc), docker-registry, skopeo, python3, curl, GNU time, iproute2.
# Environment: IMAGE_TRANSMIT (default target/release/image-transmit), WAN_PROXY (default
# target/release/wan-proxy), BENCH_DIR, BENCH_TIMEOUT as in lib.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rounds=3
rate=200
delay=25
cut_mib=64
only=large,small,cut,rate
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --delay-ms) delay=$2; shift 2 ;;
        --cut-mib) cut_mib=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }

[ "$(id -u)" = 0 ] || { echo "wan.sh needs root for ip netns and tc" >&2; exit 2; }
require docker-registry skopeo python3 curl /usr/bin/time timeout ip tc
proxy_bin=${WAN_PROXY:-$repo/target/release/wan-proxy}
if [ ! -x "$proxy_bin" ]; then
    (cd "$repo" && cargo build --release -p testkit --bin wan-proxy) >&2
fi
make_scratch wan-bench
: >"$work/problems.txt"

ns=itwan$$
host_if=itw$$h
ns_if=itw$$n
host_ip=10.201.0.1
ns_ip=10.201.0.2
src_port=5000
dst_port=5001
tiny=60

# Everything lib.sh's cleanup does, and the namespace (its end of the veth goes with it).
wan_cleanup() {
    cleanup
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$host_if" 2>/dev/null || true
}
trap wan_cleanup EXIT

log "namespace $ns: registries at $ns_ip, link shaped to $rate Mbit/s, $delay ms each way"
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$ns_if"
ip link set "$ns_if" netns "$ns"
ip addr add "$host_ip/30" dev "$host_if"
ip link set "$host_if" up
ip netns exec "$ns" ip addr add "$ns_ip/30" dev "$ns_if"
ip netns exec "$ns" ip link set "$ns_if" up
ip netns exec "$ns" ip link set lo up

# shape MBIT: both directions of the veth at MBIT Mbit/s.
shape() {
    # 4 ms worth of bytes: above what the kernel's timer needs to reach the rate, small enough
    # that no burst outruns the link.
    local burst=$(($1 * 500))b
    tc qdisc replace dev "$host_if" root tbf rate "$1mbit" burst "$burst" latency 50ms
    ip netns exec "$ns" tc qdisc replace dev "$ns_if" root tbf rate "$1mbit" burst "$burst" latency 50ms
}

# ns_registry NAME PORT: (re)starts registry NAME in the namespace with an empty root unless
# KEEP_ROOT=1; sets $ns_reg_pid.
ns_registry() {
    local name=$1 port=$2 dir=$work/registry-$1 tries
    [ "${KEEP_ROOT:-0}" = 1 ] || rm -rf "$dir/root"
    mkdir -p "$dir/root"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $dir/root}, delete: {enabled: true}}
http: {addr: $ns_ip:$port}
EOF
    ip netns exec "$ns" docker-registry serve "$dir/config.yml" >>"$dir/access.log" 2>&1 &
    ns_reg_pid=$!
    pids+=("$ns_reg_pid")
    for tries in $(seq 100); do
        curl -fsS -o /dev/null "http://$ns_ip:$port/v2/" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "registry $name did not start" >&2
    cat "$dir/access.log" >&2
    exit 1
}

# start_proxy NAME UPSTREAM_PORT [ARGS…]: a wan-proxy in front of that registry with ARGS
# (--cut-after); sets $proxy_port, its counters in $work/NAME.stats.
start_proxy() {
    local name=$1 upstream=$2 args tries
    shift 2
    args=(--upstream "$ns_ip:$upstream" --delay-ms "$delay" --stats "$work/$name.stats" "$@")
    "$proxy_bin" "${args[@]}" >"$work/$name.port" 2>&1 &
    pids+=("$!")
    for tries in $(seq 100); do
        proxy_port=$(sed -n 's/^127\.0\.0\.1://p' "$work/$name.port")
        [ -n "$proxy_port" ] && [ -s "$work/$name.stats" ] && return 0
        sleep 0.05
    done
    echo "wan-proxy $name did not start" >&2
    exit 1
}

# moved NAME: "UP DOWN" bytes through proxy NAME so far (waits for its next count).
moved() {
    sleep 0.25
    awk '{ print $1, $2 }' "$work/$1.stats"
}

# Images: made on the host, pushed straight into the namespace before the link is shaped.
log "generating images"
python3 "$here/make-images.py" "$work/oci" --images 8 --big-mib 0 --tiny "$tiny" --single-mib "$cut_mib"
ns_registry source "$src_port"
src_pid=$ns_reg_pid
ns_registry target "$dst_port"
dst_pid=$ns_reg_pid
log "pushing to the source registry"
refs=()
for i in $(seq 0 7); do refs+=("team/app$i=app$i"); done
for i in $(seq 0 $((tiny - 1))); do refs+=("tiny/app$i=tiny$i"); done
refs+=("single/app=single")
for ref in "${refs[@]}"; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:${ref#*=}" "docker://$ns_ip:$src_port/${ref%%=*}:latest"
done
rm -rf "$work/oci"
shape "$rate"

start_proxy src "$src_port"
src_proxy=$proxy_port
start_proxy dst "$dst_port"
dst_proxy=$proxy_port
start_proxy src-cut "$src_port" --cut-after $((16 << 20))
src_cut=$proxy_port
start_proxy dst-cut "$dst_port" --cut-after $((16 << 20))
dst_cut=$proxy_port

# list_of SET: image lines for image-transmit and a sync yaml for skopeo, SET "team" or "tiny".
list_of() {
    local set=$1 count i
    count=8
    [ "$set" = tiny ] && count=$tiny
    : >"$work/$set.list"
    {
        echo "127.0.0.1:$src_proxy:"
        echo "  tls-verify: false"
        echo "  images:"
    } >"$work/$set.sync.yaml"
    for i in $(seq 0 $((count - 1))); do
        echo "$set/app$i:latest" >>"$work/$set.list"
        echo "    $set/app$i: [latest]" >>"$work/$set.sync.yaml"
    done
}
list_of team
list_of tiny

# verify PROXY_PORT LIST: "ok" when every image of LIST has the source's manifest digest there.
verify() {
    local port=$1 list=$2 bad=() line
    while read -r line; do
        [ "$(manifest_digest "$port" "${line%:*}" latest || true)" = "$(manifest_digest "$src_proxy" "${line%:*}" latest)" ] ||
            bad+=("$line")
    done <"$list"
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "MISMATCH:${bad[*]}"; fi
}

# fresh_target: an empty target registry behind the same proxies.
fresh_target() {
    kill "$dst_pid" 2>/dev/null || true
    wait "$dst_pid" 2>/dev/null || true
    ns_registry target "$dst_port"
    dst_pid=$ns_reg_pid
}

# run SCENARIO TOOL ROUND SRC_PROXY_NAME DST_PROXY_NAME LIST CMD…: one timed run recorded in
# results.tsv with the bytes it moved (down through the source's proxy, up through the
# target's).
run() {
    local scenario=$1 tool=$2 round=$3 src_name=$4 dst_name=$5 list=$6 name=$2-$1-r$3 checked
    local src_before dst_before src_after dst_after down up dst_port_of
    shift 6
    src_before=$(moved "$src_name")
    dst_before=$(moved "$dst_name")
    [ "$tool" != skopeo ] || rm -f "$skopeo_cache"
    timed_run "$work" "$work/$name.out" "$work/$name.time" "$@"
    src_after=$(moved "$src_name")
    dst_after=$(moved "$dst_name")
    down=$(( ${src_after#* } - ${src_before#* } ))
    up=$(( ${dst_after%% *} - ${dst_before%% *} ))
    checked=$(verify "$dst_proxy" "$list")
    if [ "${EXPECTED_TO_FAIL:-0}" = 1 ]; then
        # Recorded, not a problem of the benchmark: the point is to show that it fails.
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$round" "$run_rc" \
            "$checked" "$run_wall" "$run_user" "$run_sys" "$run_rss" "down=$down" "up=$up" >>"$results"
    else
        record_run "$scenario" "$tool" "$round" "$checked" "down=$down" "up=$up" "$work/$name.out" "$@"
    fi
    log "$scenario $tool r$round: exit $run_rc, $run_wall s, rss ${run_rss} KiB, down $down, up $up, $checked"
}

# ours_copy SRC_PORT DST_PORT LIST [ARGS…]: sets $cmd to image-transmit's copy between them.
ours_copy() {
    local src=$1 dst=$2 list=$3
    shift 3
    cmd=("$bin" copy --from "http://127.0.0.1:$src" --to "http://127.0.0.1:$dst" --list "$list" "$@")
}

# probe_link ROUND: the link's own speed, from one download of the single image's layer
# through the source's proxy with curl (recorded as scenario "link").
probe_link() {
    local manifest digest
    manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$src_proxy/v2/single/app/manifests/latest")
    digest=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["layers"][0]["digest"])' "$manifest")
    run link curl "$1" src dst /dev/null curl -fsS -o /dev/null "http://127.0.0.1:$src_proxy/v2/single/app/blobs/$digest"
}

for round in $(seq 1 "$rounds"); do
    if wants large; then probe_link "$round"; fi
    if [ $((round % 2)) = 1 ]; then order=(image-transmit skopeo); else order=(skopeo image-transmit); fi
    for set in large small; do
        wants "$set" || continue
        key=team
        [ "$set" = small ] && key=tiny
        for tool in "${order[@]}"; do
            fresh_target
            if [ "$tool" = image-transmit ]; then
                ours_copy "$src_proxy" "$dst_proxy" "$work/$key.list"
                run "$set" "$tool" "$round" src dst "$work/$key.list" "${cmd[@]}"
            else
                run "$set" "$tool" "$round" src dst "$work/$key.list" skopeo sync --src yaml --dest docker \
                    --dest-tls-verify=false "$work/$key.sync.yaml" "127.0.0.1:$dst_proxy/$key"
            fi
        done
    done
done

if wants cut; then
    echo "single/app:latest" >"$work/single.list"
    # The bundle to upload: saved once, through the uncut link.
    mkdir -p "$work/single-bundle"
    (cd "$work/single-bundle" && "$bin" save --from "http://127.0.0.1:$src_proxy" --list "$work/single.list" \
        --out img >"$work/save.out" 2>&1) || { cat "$work/save.out" >&2; exit 1; }
    meta=$(find "$work/single-bundle" -name '*_meta.yaml' -type f | head -n 1)
    for round in $(seq 1 "$rounds"); do
        fresh_target
        ours_copy "$src_cut" "$dst_cut" "$work/single.list"
        run cut image-transmit-copy "$round" src-cut dst-cut "$work/single.list" "${cmd[@]}"
        ours_copy "$src_cut" "$dst_cut" "$work/single.list" --chunk-size 8M
        fresh_target
        run cut image-transmit-copy-8M "$round" src-cut dst-cut "$work/single.list" "${cmd[@]}"
        fresh_target
        run cut image-transmit-upload "$round" src-cut dst-cut "$work/single.list" \
            "$bin" upload --to "http://127.0.0.1:$dst_cut" "$meta"
        fresh_target
        run cut image-transmit-upload-8M "$round" src-cut dst-cut "$work/single.list" \
            "$bin" upload --chunk-size 8M --to "http://127.0.0.1:$dst_cut" "$meta"
        # Downloads alone: a bundle saved through the cutting proxy, then uploaded uncut so
        # that the run is checked like the others (the bytes down are the save's alone).
        fresh_target
        rm -rf "$work/cut-bundle"
        mkdir -p "$work/cut-bundle"
        run cut image-transmit-save "$round" src-cut dst "$work/single.list" bash -c \
            'cd "$4" && "$1" save --from "$2" --list "$3" --out img && "$1" upload --to "$5" data/*/*_meta.yaml' \
            save-then-upload "$bin" "http://127.0.0.1:$src_cut" "$work/single.list" "$work/cut-bundle" \
            "http://127.0.0.1:$dst_proxy"
        fresh_target
        # skopeo has no resume: a layer larger than the cut cannot arrive.
        EXPECTED_TO_FAIL=1 run cut skopeo "$round" src-cut dst-cut "$work/single.list" skopeo copy --src-tls-verify=false \
            --dest-tls-verify=false "docker://127.0.0.1:$src_cut/single/app:latest" \
            "docker://127.0.0.1:$dst_cut/single/app:latest"
    done
fi

if wants rate; then
    shape 1000
    for round in $(seq 1 "$rounds"); do
        fresh_target
        ours_copy "$src_proxy" "$dst_proxy" "$work/team.list" --limit-rate 50M
        run rate image-transmit-50M "$round" src dst "$work/team.list" "${cmd[@]}"
    done
    shape "$rate"
fi

describe_machine "" "link: veth shaped by tc tbf to $rate Mbit/s each way, wan-proxy $delay ms each way" >"$work/machine.txt"
python3 "$here/summarize-wan.py" "$results" "$work/machine.txt" --rate "$rate" --cut-mib "$cut_mib"
[ ! -s "$work/problems.txt" ] || { echo "problems:" >&2; cat "$work/problems.txt" >&2; exit 1; }
