#!/usr/bin/env bash
# Benchmark, not a test: times `image-transmit copy SOURCE DESTINATION` between a registry and
# files (OCI image layouts, docker-archive and oci-archive files) against skopeo on the
# synthetic image set of copy-vs-skopeo.sh, and prints a markdown table of medians.
#
#   bench/transports-vs-skopeo.sh [--rounds N] [--big-mib N] [--keep]
#
# What it does (docs/benchmarks.md, "Copy between transports", says why):
#   1. writes the same images as copy-vs-skopeo.sh (bench/make-images.py: 8 images, 512 MiB of
#      unique layers; one 96 MiB layer; one --big-mib layer), pushes them with skopeo to a
#      source registry it starts on a free loopback port, then warms that registry (one untimed
#      read of every layer blob with curl), so its files are in the page cache;
#   2. each round, for each tool in interleaved order (A B, B A, A B, …):
#      to-oci: the 8 images registry → one OCI layout. image-transmit: one
#        `copy http://127.0.0.1:SRC oci:DIR team/app0:latest …`; skopeo: one timed shell running
#        `skopeo copy docker://… oci:DIR:NAME` for the 8 images one after another (skopeo 1.9.3's
#        sync writes `docker` and `dir` only, not `oci`). Both layouts name the images
#        127.0.0.1:SRC/team/appN:latest; skopeo must read every image of both back with the
#        source's manifest digest (`skopeo inspect oci:DIR:NAME`);
#      from-oci: that layout → a fresh, empty target registry. image-transmit: one
#        `copy oci:DIR http://127.0.0.1:DST` (no image listed: all of them); skopeo: 8 ×
#        `skopeo copy oci:DIR:NAME docker://127.0.0.1:DST/team/appN:latest`; every target
#        manifest digest must equal the source's;
#      small-da / big-da: small/app, then big/app, registry → a new docker-archive file, one
#        image each, both tools; skopeo must read each archive back with the source's config;
#      image-transmit only: the set into one docker-archive file (set-da) and into one
#        oci-archive file (set-oa), read back by skopeo;
#      skopeo only, references: `skopeo sync --src yaml --dest dir` of the set (one process;
#        one directory per image, shared layers written once per image) and `skopeo sync
#        --src dir --dest docker` of those directories to a fresh target;
#      and the floors of the machine: the set's 18 layer blobs fetched with curl (5 at once)
#      into /dev/null, 512 MiB written with dd and fsync'd, and skopeo's fixed cost per call
#      (8 × `skopeo inspect --raw docker://…`, one after another: start, ping, one manifest);
#   3. prints the table (bench/summarize-transports.py) from results.tsv; exits 1 if any run
#      failed, skopeo could not read what image-transmit wrote, or a digest differs from the
#      source's (listed under "Problems").
# Each timing covers the client process(es) only, never the registries: wall time from the
# shell's clock (ms), user+sys CPU and peak RSS from GNU time (for a skopeo loop: CPU of all 8
# processes, peak RSS of the largest). Outputs go to the scratch directory, on the same disk as
# the registries, and are deleted after each tool's turn. skopeo's blob-info cache is deleted
# before every skopeo timing; its temporary files go to the scratch directory too (TMPDIR).
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
make_scratch transports-bench

# The name both tools give an image inside a layout or archive: what image-transmit writes
# (127.0.0.1:SRC/team/app0:latest), which skopeo is told to write too.
file_name() { echo "127.0.0.1:$src_port/$1:latest"; }

# verify_target DST_PORT REPO…: "ok" when every REPO:latest has the source's manifest digest.
verify_target() {
    local dst=$1 bad=() r
    shift
    for r in "$@"; do
        [ "$(manifest_digest "$dst" "$r" latest || true)" = "${source_digest[$r]}" ] || bad+=("$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "MISMATCH:${bad[*]}"; fi
}

# verify_layout DIR REPO…: "ok" when skopeo reads each image of the OCI layout DIR, under its
# file name, with the source's manifest digest.
verify_layout() {
    local dir=$1 bad=() r got
    shift
    for r in "$@"; do
        got=$(skopeo inspect --format '{{.Digest}}' "oci:$dir:$(file_name "$r")" 2>>"$verify_log" || true)
        [ "$got" = "${source_digest[$r]}" ] || bad+=("$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "SKOPEO-READ:${bad[*]}"; fi
}

# verify_docker_archive FILE DEEP REPO…: "ok" when skopeo reads each image of the docker-archive
# FILE, under its file name, with the source's config digest (skopeo rebuilds the manifest of
# a docker-archive, so the config is what must match). DEEP=1: skopeo also copies every image
# out of the archive into a scratch `dir:` (reads every layer and checks it against the
# config's diff_ids), untimed.
verify_docker_archive() {
    local file=$1 deep=$2 bad=() r got
    shift 2
    for r in "$@"; do
        got=$(skopeo inspect --raw "docker-archive:$file:$(file_name "$r")" 2>>"$verify_log" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true)
        if [ "$got" != "${source_config[$r]}" ]; then
            bad+=("$r")
        elif [ "$deep" = 1 ]; then
            rm -rf "$file.deep"
            TMPDIR=$(dirname "$file") skopeo copy --quiet "docker-archive:$file:$(file_name "$r")" "dir:$file.deep" \
                >>"$verify_log" 2>&1 || bad+=("$r(layers)")
            rm -rf "$file.deep"
        fi
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "SKOPEO-READ:${bad[*]}"; fi
}

# verify_oci_archive FILE REPO…: "ok" when the oci-archive FILE's index lists each image (under
# io.containerd.image.name = its file name) with the source's manifest digest, and skopeo reads
# the first and the last of them with that digest. (Each skopeo read unpacks the whole archive,
# so not all 8.) The archive's org.opencontainers.image.ref.name is the name without the host
# (team/app0:latest): skopeo is asked for that.
verify_oci_archive() {
    local file=$1 bad=() r got
    shift
    local expected=()
    for r in "$@"; do expected+=("$(file_name "$r")=${source_digest[$r]}"); done
    got=$(python3 - "$file" "${expected[@]}" <<'EOF'
import json, sys, tarfile
path, pairs = sys.argv[1], sys.argv[2:]
with tarfile.open(path) as tar:
    index = json.load(tar.extractfile("index.json"))
names = {m.get("annotations", {}).get("io.containerd.image.name"): m["digest"] for m in index["manifests"]}
bad = [p.split("=", 1)[0] for p in pairs if names.get(p.split("=", 1)[0]) != p.split("=", 1)[1]]
print("ok" if not bad else "INDEX:" + " ".join(bad))
EOF
    )
    [ "$got" = ok ] || bad+=("$got")
    for r in "$1" "${@: -1}"; do
        got=$(TMPDIR=$(dirname "$file") skopeo inspect --format '{{.Digest}}' "oci-archive:$file:$r:latest" 2>>"$verify_log" || true)
        [ "$got" = "${source_digest[$r]}" ] || bad+=("skopeo:$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "SKOPEO-READ:${bad[*]}"; fi
}

# verify_dirs DIR REPO…: "ok" when DIR/appN:latest/manifest.json (skopeo sync --dest dir) has
# the source's manifest digest.
verify_dirs() {
    local dir=$1 bad=() r
    shift
    for r in "$@"; do
        [ "sha256:$(sha256sum <"$dir/${r#*/}:latest/manifest.json" 2>/dev/null | cut -d' ' -f1)" = "${source_digest[$r]}" ] ||
            bad+=("$r")
    done
    if [ ${#bad[@]} -eq 0 ]; then echo ok; else echo "MISMATCH:${bad[*]}"; fi
}

# measure SCENARIO TOOL ROUND [DST_PORT]: one timed run, appended to results.tsv. Writes into
# $work/out-$TOOL-$SCENARIO-r$ROUND; from-oci and from-dir read what to-oci and to-dir wrote in
# the same round.
measure() {
    local scenario=$1 tool=$2 round=$3 dst=${4:-} name=$2-$1-r$3
    local out=$work/$name.out timing=$work/$name.time src_before dst_before cmd
    local dir=$work/out-$name repos r single
    case "$scenario" in
        small-da|big-da) single=${scenario%-da}; repos=("$single/app") ;;
        *) repos=("${set_repos[@]}") ;;
    esac
    rm -rf "$dir"
    mkdir -p "$dir"
    local layout=$work/out-$tool-to-oci-r$round/layout
    case "$scenario:$tool" in
        to-oci:image-transmit)
            cmd=("$bin" --lang en_US copy "http://127.0.0.1:$src_port" "oci:$dir/layout")
            for r in "${repos[@]}"; do cmd+=("$r:latest"); done ;;
        to-oci:skopeo)
            rm -f "$skopeo_cache"
            # One shell runs skopeo once per image, one after another, into one layout; GNU time
            # reports the CPU of all of them and the peak RSS of the largest.
            cmd=(bash -c 'while [ $# -gt 0 ]; do
                     skopeo copy --quiet --src-tls-verify=false "docker://'"127.0.0.1:$src_port"'/$1:latest" \
                         "oci:$0/layout:'"127.0.0.1:$src_port"'/$1:latest" || exit
                     shift; done' "$dir" "${repos[@]}") ;;
        from-oci:image-transmit)
            cmd=("$bin" --lang en_US copy "oci:$layout" "http://127.0.0.1:$dst") ;;
        from-oci:skopeo)
            rm -f "$skopeo_cache"
            cmd=(bash -c 'while [ $# -gt 0 ]; do
                     skopeo copy --quiet --dest-tls-verify=false "oci:$0:'"127.0.0.1:$src_port"'/$1:latest" \
                         "docker://'"127.0.0.1:$dst"'/$1:latest" || exit
                     shift; done' "$layout" "${repos[@]}") ;;
        small-da:image-transmit|big-da:image-transmit)
            cmd=("$bin" --lang en_US copy "http://127.0.0.1:$src_port" "docker-archive:$dir/image.tar" "$single/app:latest") ;;
        small-da:skopeo|big-da:skopeo)
            rm -f "$skopeo_cache"
            cmd=(skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$src_port/$single/app:latest"
                 "docker-archive:$dir/image.tar:$(file_name "$single/app")") ;;
        set-da:image-transmit)
            cmd=("$bin" --lang en_US copy "http://127.0.0.1:$src_port" "docker-archive:$dir/set.tar")
            for r in "${repos[@]}"; do cmd+=("$r:latest"); done ;;
        set-oa:image-transmit)
            cmd=("$bin" --lang en_US copy "http://127.0.0.1:$src_port" "oci-archive:$dir/set.tar")
            for r in "${repos[@]}"; do cmd+=("$r:latest"); done ;;
        to-dir:skopeo-sync)
            rm -f "$skopeo_cache"
            cmd=(skopeo sync --src yaml --dest dir "$work/team.sync.yaml" "$dir/dirs") ;;
        from-dir:skopeo-sync)
            rm -f "$skopeo_cache"
            cmd=(skopeo sync --src dir --dest docker --dest-tls-verify=false
                 "$work/out-skopeo-sync-to-dir-r$round/dirs" "127.0.0.1:$dst/team") ;;
        floor-get:curl)
            cmd=(bash -c 'xargs -P "$0" -n 1 sh -c '"'"'curl -fsS -o /dev/null "$0" || exit 255'"'"' <"$1"'
                 "$floor_conns" "$work/team.blob-urls") ;;
        floor-write:dd)
            cmd=(dd if=/dev/zero of="$dir/floor.bin" bs=1M count=512 conv=fsync status=none) ;;
        per-call:skopeo)
            cmd=(bash -c 'while [ $# -gt 0 ]; do
                     skopeo inspect --raw --tls-verify=false "docker://'"127.0.0.1:$src_port"'/$1:latest" >/dev/null || exit
                     shift; done' "$dir" "${repos[@]}") ;;
        *) echo "measure: unknown $scenario:$tool" >&2; exit 2 ;;
    esac
    src_before=$(wc -l <"$src_log")
    dst_before=0
    [ -n "$dst" ] && dst_before=$(wc -l <"$dst_log")
    log "$scenario round $round: $tool"
    TMPDIR=$dir timed_run "$dir" "$out" "$timing" "${cmd[@]}"
    local src_requests dst_requests="" checked=skipped deep=0
    src_requests=$(count_requests "$src_log" "$src_before")
    [ -n "$dst" ] && dst_requests=$(count_requests "$dst_log" "$dst_before")
    [ "$round" = 1 ] && deep=1
    verify_log=$dir/verify.out
    if [ "$run_rc" = 0 ]; then
        case "$scenario" in
            to-oci) checked=$(verify_layout "$dir/layout" "${repos[@]}") ;;
            from-oci|from-dir) checked=$(verify_target "$dst" "${repos[@]}") ;;
            small-da|big-da) checked=$(verify_docker_archive "$dir/image.tar" 0 "${repos[@]}") ;;
            set-da) checked=$(verify_docker_archive "$dir/set.tar" "$deep" "${repos[@]}") ;;
            set-oa) checked=$(verify_oci_archive "$dir/set.tar" "${repos[@]}") ;;
            to-dir) checked=$(verify_dirs "$dir/dirs" "${repos[@]}") ;;
            floor-*|per-call) checked=ok ;;
        esac
        # What the checking tool said goes with the run's output, for the Problems section.
        if [ "$checked" != ok ] && [ -s "$verify_log" ]; then sed 's/^/verify: /' "$verify_log" >>"$out"; fi
    fi
    record_run "$scenario" "$tool" "$round" "$checked" "$src_requests" "$dst_requests" "$out" "${cmd[@]}"
}

# to_registry TOOL ROUND SCENARIO: a fresh target, one timed run of SCENARIO into it, the target
# deleted.
to_registry() {
    local tool=$1 round=$2 scenario=$3
    start_registry "target-$tool-$scenario-r$round"
    dst_port=$reg_port dst_pid=$reg_pid dst_log=$reg_log
    measure "$scenario" "$tool" "$round" "$dst_port"
    stop_registry "$dst_pid" "target-$tool-$scenario-r$round"
}

drop_outputs() { # deletes what the runs of ROUND left behind
    rm -rf "$work"/out-*-r"$1"
}

# ---------------------------------------------------------------------------------------------
log "scratch directory $work"
# Uncommitted changes to the product (not to bench/ or docs/) at the time of the run.
changed=$(git -C "$repo" --no-optional-locks status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null | wc -l || echo 0)
describe_machine "$([ "$changed" -gt 0 ] && echo " + $changed uncommitted product files")" \
    "scratch file system: $(df -PT "$work" | awk 'NR == 2 { print $2 }')" >"$work/machine.txt"

setup_source

# The source's manifest and config digests (what every layout, archive and target must
# reproduce) and, for the GET floor and the warm-up, one URL per distinct layer blob.
declare -A source_digest source_config
for r in "${set_repos[@]}" "${singles[@]/%//app}"; do
    source_digest[$r]=$(manifest_digest "$src_port" "$r" latest)
    source_config[$r]=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$src_port/v2/$r/manifests/latest" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])')
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
small_mib=$(awk '{ s += $2 } END { printf "%d", s / 1048576 }' "$work/small.blobs")
echo "unique layer bytes of the set: $unique_mib MiB in $(wc -l <"$work/team.blobs") layer blobs" >>"$work/machine.txt"

log "warming the source registry: one untimed read of every layer blob"
for set in team "${singles[@]}"; do
    xargs -n 1 curl -fsS -o /dev/null <"$work/$set.blob-urls"
done
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.txt"

: >"$results"
: >"$work/problems.txt"
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order=(image-transmit skopeo); else order=(skopeo image-transmit); fi
    for tool in "${order[@]}"; do
        measure to-oci "$tool" "$round"
        to_registry "$tool" "$round" from-oci
        drop_outputs "$round"
        for single in "${singles[@]}"; do
            measure "$single-da" "$tool" "$round"
            drop_outputs "$round"
        done
        if [ "$tool" = image-transmit ]; then
            measure set-da image-transmit "$round"
            drop_outputs "$round"
            measure set-oa image-transmit "$round"
            drop_outputs "$round"
        else
            measure to-dir skopeo-sync "$round"
            to_registry skopeo-sync "$round" from-dir
            drop_outputs "$round"
        fi
    done
    measure floor-get curl "$round"
    measure floor-write dd "$round"
    measure per-call skopeo "$round"
    drop_outputs "$round"
done

echo "load average after the timed runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.txt"
python3 "$here/summarize-transports.py" "$results" "$work/machine.txt" "$work/problems.txt" \
    --unique-mib "$unique_mib" --small-mib "$small_mib" --big-mib "$big_mib"
if [ "$keep" = 1 ]; then
    log "raw results: $results; tool output: $work/*.out"
fi
if [ -s "$work/problems.txt" ]; then
    log "some runs failed, skopeo could not read what image-transmit wrote, or a digest differs: see Problems above"
    exit 1
fi
