#!/usr/bin/env bash
# A self-contained demonstration of a direct copy: starts two throwaway CNCF registries on
# loopback, pushes a small sample image into the first over the registry API, copies it to the
# second with image-transmit (renamed, with the target namespace rewrite of cfg.yaml), and
# checks that the manifest digest on the target equals the source's.
# Needs: docker-registry (Debian package), curl, sha256sum; builds image-transmit if needed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v docker-registry >/dev/null || { echo "demo needs the docker-registry package (apt-get install docker-registry)"; exit 2; }
[ -x target/release/image-transmit ] || cargo build --release -q -p image-transmit
tool="$PWD/target/release/image-transmit"

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || shuf -i 20000-60000 -n 1; }
start_registry() {
  local name=$1 port=$2
  mkdir -p "$work/$name"
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work/$name" "$port" > "$work/$name.yml"
  docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry $name did not start"; cat "$work/$name.log"; exit 1
}
push_blob() {
  local port=$1 repo=$2 file=$3 digest location
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  location=$(curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$location${sep}digest=$digest" >/dev/null
  echo "$digest"
}

source_port=$(free_port); start_registry source "$source_port"
target_port=$(free_port); start_registry target "$target_port"

# A sample image: one gzip'd layer with a file, a config, a Docker schema 2 manifest.
mkdir -p "$work/rootfs/etc" && echo "hello from image-transmit" > "$work/rootfs/etc/motd"
tar -C "$work/rootfs" -cf "$work/layer.tar" etc && gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$work/config.json"
layer=$(push_blob "$source_port" demo/hello "$work/layer.tar.gz")
config=$(push_blob "$source_port" demo/hello "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%s,"digest":"%s"}]}' \
  "$(stat -c %s "$work/config.json")" "$config" "$(stat -c %s "$work/layer.tar.gz")" "$layer" > "$work/manifest.json"
curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' --data-binary "@$work/manifest.json" \
  "http://127.0.0.1:$source_port/v2/demo/hello/manifests/1.0" >/dev/null
source_digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
echo "source: 127.0.0.1:$source_port/demo/hello:1.0 ($source_digest)"

# The original tool's cfg.yaml and list, used as they are.
cat > "$work/cfg.yaml" <<YAML
source:
- name: vendor
  registry: "http://127.0.0.1:$source_port"
target:
- name: customer
  registry: "http://127.0.0.1:$target_port"
  repository: delivered
YAML
printf 'vendor.example.com/demo/hello:1.0\nvendor.example.com/demo/hello:1.0 -> hello-renamed:stable\n' > "$work/img.lst"
(cd "$work" && "$tool" -src=vendor -dst=customer -lst=img.lst)

for reference in delivered/hello/manifests/1.0 delivered/hello-renamed/manifests/stable; do
  target_digest="sha256:$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$target_port/v2/$reference" | sha256sum | cut -d' ' -f1)"
  if [ "$target_digest" != "$source_digest" ]; then echo "digest mismatch on $reference: $target_digest"; exit 1; fi
  echo "target: 127.0.0.1:$target_port/${reference/\/manifests\//:} has the same digest"
done
echo "demo finished: both images arrived byte for byte"
