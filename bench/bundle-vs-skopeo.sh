#!/usr/bin/env bash
# Benchmark, not a test: times the offline path, `image-transmit save` (registry → bundle) and
# `image-transmit upload` (bundle → registry), against skopeo on the synthetic image set of
# copy-vs-skopeo.sh, and prints a markdown table of medians.
#
#   bench/bundle-vs-skopeo.sh [--rounds N] [--big-mib N] [--keep]
#
# What it does (docs/benchmarks.md, "Offline bundles", says why):
#   1. writes the same images as copy-vs-skopeo.sh (bench/make-images.py: 8 images, 512 MiB of
#      unique layers; one 96 MiB layer; one --big-mib layer), pushes them with skopeo to a
#      source registry it starts on a free loopback port, then warms that registry: one
#      untimed save of the set (checked with `image-transmit verify`, then deleted) and one
#      untimed read of the big layer, so the registry's files are in the page cache;
#   2. each round, for each tool in interleaved order (A B, B A, A B, …):
#      image-transmit: a timed `save` of the set into a fresh scratch directory, an untimed
#        `verify` of the bundle, then a timed `upload` of that bundle to a fresh, empty target
#        registry; then the bundle and the target are deleted;
#      skopeo: a timed shell running `skopeo copy docker://… oci-archive:FILE:appN` for the 8
#        images one after another (one archive per image, as skopeo saves), the archives checked
#        and deleted; the same into one shared `oci:` layout (a reference, no target); then a
#        timed `skopeo sync --src yaml --dest docker` of the set to a fresh target registry;
#      and the floors of the machine: the 18 layer blobs fetched with curl (5 at once, as many
#      as image-transmit's default) into /dev/null, and 512 MiB written with dd and fsync'd;
#   3. the scaling run: the 96 MiB-layer image, then the big one, each saved alone by both tools
#      and uploaded alone by image-transmit (one blob stream; peak RSS should not move);
#   4. prints the table (bench/summarize-bundle.py) from results.tsv; exits 1 if any run failed,
#      a bundle did not verify or a target's manifest digest differs from the source's.
# Each timing covers the client process(es) only, never the registries: wall time from the
# shell's clock (ms), user+sys CPU and peak RSS from GNU time (for the skopeo loop: CPU of all 8
# processes, peak RSS of the largest). Outputs go to the scratch directory, on the same disk as
# the registries. skopeo's blob-info cache is deleted before every skopeo timing; its temporary
# files (oci-archive builds a layout, then tars it) go to the scratch directory too (TMPDIR).
#
# Environment: IMAGE_TRANSMIT (binary; default target/release/image-transmit, built if missing;
# copy it somewhere private when the build directory may be rebuilt mid-run), BENCH_DIR (parent
# of the scratch directory; default $TMPDIR or /tmp), BENCH_TIMEOUT (seconds per tool run,
# default 900). Needs: docker-registry (CNCF distribution), skopeo, python3, curl, GNU time
# (/usr/bin/time), dd.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

parse_args "$@"
floor_conns=5
require docker-registry skopeo python3 curl dd /usr/bin/time timeout
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
make_scratch bundle-bench

# verify_target DST_PORT REPO…: "ok" when every REPO:latest has the source's manifest digest.
verify_target() {
    local dst=$1 bad=() r
    shift
    for r in "$@"; do
        [ "$(manifest_digest "$dst" "$r" latest || true)" = "${source_digest[$r]}" ] || bad+=("$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "MISMATCH:${bad[*]}"; fi
}

# verify_bundle DIR: "ok" when DIR holds exactly one meta and `image-transmit verify` accepts it.
verify_bundle() {
    local metas=("$1"/data/*/*_meta.yaml)
    if [ ${#metas[@]} != 1 ] || [ ! -f "${metas[0]}" ]; then
        echo "NO-META"
        return
    fi
    if (cd "$1" && "$bin" --lang en_US verify "${metas[0]#"$1"/}") >"$1.verify.out" 2>&1 </dev/null; then
        echo ok
    else
        echo "VERIFY-FAILED($(tail -n 1 "$1.verify.out"))"
    fi
}

# verify_oci KIND PATH REPO…: "ok" when each image skopeo wrote names the source's manifest
# digest (KIND archive: PATH/appN.tar each with one image; KIND layout: one layout at PATH).
verify_oci() {
    local kind=$1 path=$2
    shift 2
    local expected=() r
    for r in "$@"; do expected+=("$r=${source_digest[$r]}"); done
    python3 - "$kind" "$path" "${expected[@]}" <<'EOF'
import json, os, sys, tarfile
kind, path, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
bad = []
layout = None
if kind == "layout":
    with open(os.path.join(path, "index.json")) as f:
        layout = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"]
                  for m in json.load(f)["manifests"]}
for pair in pairs:
    repo, digest = pair.split("=", 1)
    name = repo.rsplit("/", 1)[-1] if repo.startswith("team/") else repo.split("/", 1)[0]
    try:
        if layout is not None:
            found = layout.get(name)
        else:
            with tarfile.open(os.path.join(path, name + ".tar")) as tar:
                index = json.load(tar.extractfile("index.json"))
            found = index["manifests"][0]["digest"]
    except Exception as e:  # a missing or unreadable archive is a failed run
        found = f"error: {e}"
    if found != digest:
        bad.append(repo)
print("ok" if not bad else "MISMATCH:" + " ".join(bad))
EOF
}

# measure SCENARIO TOOL ROUND SET [DST_PORT]: one timed run, appended to results.tsv. Leaves
# its output in $work/out-$TOOL-$SCENARIO-r$ROUND (bundle, archives, layout) for the caller.
measure() {
    local scenario=$1 tool=$2 round=$3 set=$4 dst=${5:-} name=$2-$1-r$3
    local out=$work/$name.out timing=$work/$name.time src_before dst_before cmd
    local dir=$work/out-$name repos=("$set/app") r i
    [ "$set" = team ] && repos=("${set_repos[@]}")
    rm -rf "$dir"
    mkdir -p "$dir"
    case "$scenario:$tool" in
        *save:image-transmit)
            # SAVE_FLAGS adds options to every save (e.g. --fast).
            read -ra save_flags <<< "${SAVE_FLAGS:-}"
            cmd=("$bin" --lang en_US save "${save_flags[@]}" --from "http://127.0.0.1:$src_port")
            for r in "${repos[@]}"; do cmd+=("$r:latest"); done ;;
        *save:skopeo|*save-layout:skopeo)
            rm -f "$skopeo_cache"
            # One shell runs skopeo once per image, one after another; GNU time reports the CPU
            # of all of them and the peak RSS of the largest.
            local dest='oci-archive:$0/${1#*/}.tar:${1#*/}'
            [ "${scenario%-layout}" != "$scenario" ] && dest='oci:$0/layout:${1#*/}'
            [ "$set" != team ] && dest=${dest//'${1#*/}'/'${1%%/*}'}
            cmd=(bash -c 'while [ $# -gt 0 ]; do
                     skopeo copy --quiet --src-tls-verify=false "docker://'"127.0.0.1:$src_port"'/$1:latest" "'"$dest"'" || exit
                     shift; done' "$dir" "${repos[@]}") ;;
        *upload:image-transmit)
            local metas=("$work/out-image-transmit-${scenario%upload}save-r$round"/data/*/*_meta.yaml)
            cmd=("$bin" --lang en_US upload --to "http://127.0.0.1:$dst" "${metas[0]}") ;;
        *upload:skopeo)
            rm -f "$skopeo_cache"
            cmd=(skopeo sync --src yaml --dest docker --dest-tls-verify=false
                 "$work/$set.sync.yaml" "127.0.0.1:$dst/$set") ;;
        floor-get:curl)
            cmd=(bash -c 'xargs -P "$0" -n 1 sh -c '"'"'curl -fsS -o /dev/null "$0" || exit 255'"'"' <"$1"'
                 "$floor_conns" "$work/$set.blob-urls") ;;
        floor-write:dd)
            cmd=(dd if=/dev/zero of="$dir/floor.bin" bs=1M count="$unique_mib" conv=fsync status=none) ;;
        *) echo "measure: unknown $scenario:$tool" >&2; exit 2 ;;
    esac
    src_before=$(wc -l <"$src_log")
    dst_before=0
    [ -n "$dst" ] && dst_before=$(wc -l <"$dst_log")
    log "$scenario round $round: $tool"
    TMPDIR=$dir timed_run "$dir" "$out" "$timing" "${cmd[@]}"
    local src_requests dst_requests="" checked=skipped
    src_requests=$(count_requests "$src_log" "$src_before")
    [ -n "$dst" ] && dst_requests=$(count_requests "$dst_log" "$dst_before")
    if [ "$run_rc" = 0 ]; then
        case "$scenario:$tool" in
            *save:image-transmit) checked=$(verify_bundle "$dir") ;;
            *save:skopeo) checked=$(verify_oci archive "$dir" "${repos[@]}") ;;
            *save-layout:skopeo) checked=$(verify_oci layout "$dir/layout" "${repos[@]}") ;;
            *upload:*) checked=$(verify_target "$dst" "${repos[@]}") ;;
            floor-*) checked=ok ;;
        esac
    fi
    record_run "$scenario" "$tool" "$round" "$checked" "$src_requests" "$dst_requests" "$out" "${cmd[@]}"
}

# upload_round TOOL ROUND SET PREFIX: a fresh target, a timed upload (or sync), target deleted.
upload_round() {
    local tool=$1 round=$2 set=$3 prefix=$4
    start_registry "target-$tool-$prefix-r$round"
    dst_port=$reg_port dst_pid=$reg_pid dst_log=$reg_log
    measure "${prefix}upload" "$tool" "$round" "$set" "$dst_port"
    stop_registry "$dst_pid" "target-$tool-$prefix-r$round"
}

drop_outputs() { # deletes what the runs of ROUND left behind
    rm -rf "$work"/out-*-r"$1" "$work"/out-*-r"$1".verify.out
}

# ---------------------------------------------------------------------------------------------
log "scratch directory $work"
# Uncommitted changes to the product (not to bench/ or docs/) at the time of the run.
changed=$(git -C "$repo" --no-optional-locks status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null | wc -l || echo 0)
describe_machine "$([ "$changed" -gt 0 ] && echo " + $changed uncommitted product files")" \
    "scratch file system: $(df -PT "$work" | awk 'NR == 2 { print $2 }')" >"$work/machine.txt"

setup_source

# The source's manifest digests (what every bundle, archive and target must reproduce) and, for
# the GET floor, one URL per distinct layer blob.
declare -A source_digest
for r in "${set_repos[@]}" "${singles[@]/%//app}"; do
    source_digest[$r]=$(manifest_digest "$src_port" "$r" latest)
done
for set in team "${singles[@]}"; do
    repos=("$set/app")
    [ "$set" = team ] && repos=("${set_repos[@]}")
    for r in "${repos[@]}"; do
        curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
            "http://127.0.0.1:$src_port/v2/$r/manifests/latest" |
            python3 -c 'import json, sys; [print(sys.argv[1] + l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]' \
                "http://127.0.0.1:$src_port/v2/$r/blobs/"
    done | sort -u -k1,1 | awk '!seen[substr($1, index($1, "/blobs/"))]++' >"$work/$set.blobs"
    cut -d' ' -f1 "$work/$set.blobs" >"$work/$set.blob-urls"
done
unique_mib=$(awk '{ s += $2 } END { printf "%d", s / 1048576 }' "$work/team.blobs")
echo "unique layer bytes of the set: $unique_mib MiB in $(wc -l <"$work/team.blobs") layer blobs" >>"$work/machine.txt"
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.txt"

: >"$results"
: >"$work/problems.txt"

log "warming the source registry: one untimed save of the set, one read of the big layer"
measure save image-transmit 0 team
[ "$big_mib" -gt 0 ] && xargs -n 1 curl -fsS -o /dev/null <"$work/big.blob-urls"
drop_outputs 0
: >"$results" # the warm-up is not a result (a failure stays in problems.txt)

for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order=(image-transmit skopeo); else order=(skopeo image-transmit); fi
    for tool in "${order[@]}"; do
        case "$tool" in
            image-transmit)
                measure save image-transmit "$round" team
                upload_round image-transmit "$round" team ""
                ;;
            skopeo)
                measure save skopeo "$round" team
                drop_outputs "$round" # before the layout, so the disk holds one copy at a time
                measure save-layout skopeo "$round" team
                upload_round skopeo "$round" team ""
                ;;
        esac
        drop_outputs "$round"
    done
    measure floor-get curl "$round" team
    measure floor-write dd "$round" team
    drop_outputs "$round"
done

for single in "${singles[@]}"; do
    for tool in image-transmit skopeo; do
        measure "$single-save" "$tool" 1 "$single"
        if [ "$tool" = image-transmit ]; then upload_round image-transmit 1 "$single" "$single-"; fi
        drop_outputs 1
    done
done

echo "load average after the timed runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.txt"
python3 "$here/summarize-bundle.py" "$results" "$work/machine.txt" "$work/problems.txt" \
    --unique-mib "$unique_mib" --big-mib "$big_mib"
if [ "$keep" = 1 ]; then
    log "raw results: $results; tool output: $work/*.out"
fi
if [ -s "$work/problems.txt" ]; then
    log "some runs failed, a bundle did not verify or a target has wrong manifests: see Problems above"
    exit 1
fi
