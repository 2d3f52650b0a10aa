#!/usr/bin/env python3
"""Writes the benchmark's synthetic images into one OCI image layout.

Layers are gzip'd tars holding one file of pseudo-random bytes, so no registry or tool can
shrink them, and the same seeds give the same bytes (and digests) on every machine. gzip runs
at level 0 (stored blocks): the result is a valid tar+gzip layer of the size asked for, and
generating 2.5 GiB takes seconds instead of minutes. Neither copier decompresses layers.

The set ("app0".."app7"): every image has two shared base layers (96 MiB + 64 MiB) and two
layers of its own (32 MiB + 12 MiB): 512 MiB of unique layer bytes, 1632 MiB as referenced.
The scaling images: "small", whose one layer is the 96 MiB base layer, and "big", one layer of
--big-mib MiB. Both move one blob stream at a time, so their peak RSS differs only by layer size.

With --tiny N, also N images "tiny0".."tiny{N-1}": a shared 2 MiB base layer and an 80 KiB
layer of their own. With --single-mib M, also "single": one layer of M MiB.

Usage: make-images.py OUT_DIR [--images 8] [--big-mib 2048] [--tiny N] [--single-mib M]
Refs in OUT_DIR/index.json are app0..app{N-1}, small and, unless --big-mib 0, big; then the
tiny ones and single when asked for.
"""

import argparse
import hashlib
import json
import os
import random
import tarfile
import zlib

MIB = 1 << 20
CHUNK = 1 * MIB
BASE_LAYERS = [("base-0", 96), ("base-1", 64)]
OWN_LAYERS = [("own-a", 32), ("own-b", 12)]
# The many-small-images set (--tiny N): a shared 2 MiB base and 80 KiB of each image's own,
# so that only round trips, not bytes, make the time.
TINY_BASE = ("tiny-base", 2)
TINY_OWN_KIB = 80

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        self.layers = {}
        self.manifests = []

    def put_bytes(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blobs, digest)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def layer(self, name, mib, kib=None):
        """A tar.gz with one file of `mib` MiB (or `kib` KiB) of bytes seeded by `name`; made
        once per name."""
        if name in self.layers:
            return self.layers[name]
        seed = f"image-transmit-bench/{name}/{mib}" if kib is None else f"image-transmit-bench/{name}/{kib}k"
        rng = random.Random(seed)
        total = mib * MIB if kib is None else kib * 1024
        tar_sha = hashlib.sha256()
        gz_sha = hashlib.sha256()
        gz = zlib.compressobj(0, zlib.DEFLATED, 31)
        tmp = os.path.join(self.blobs, f".tmp-{name}")
        size = 0
        with open(tmp, "wb") as out:

            def emit(raw):
                nonlocal size
                tar_sha.update(raw)
                packed = gz.compress(raw)
                gz_sha.update(packed)
                out.write(packed)
                size += len(packed)

            info = tarfile.TarInfo(f"data/{name}.bin")
            info.size = total
            info.mode = 0o644
            info.mtime = 0
            emit(info.tobuf(format=tarfile.PAX_FORMAT))
            left = total
            while left > 0:
                step = min(CHUNK, left)
                emit(rng.randbytes(step))
                left -= step
            # The file is a whole number of 512-byte blocks; two zero blocks end the archive.
            emit(b"\0" * (2 * tarfile.BLOCKSIZE))
            tail = gz.flush()
            gz_sha.update(tail)
            out.write(tail)
            size += len(tail)
        digest = gz_sha.hexdigest()
        os.replace(tmp, os.path.join(self.blobs, digest))
        entry = (
            {"mediaType": OCI_LAYER, "digest": "sha256:" + digest, "size": size},
            "sha256:" + tar_sha.hexdigest(),
        )
        self.layers[name] = entry
        return entry

    def image(self, ref, layer_specs):
        layers = [self.layer(*spec) for spec in layer_specs]
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"bench.image": ref}},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        }
        config_desc = self.put_bytes(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": [desc for desc, _ in layers],
        }
        desc = self.put_bytes(json.dumps(manifest, indent=2).encode(), OCI_MANIFEST)
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
        self.manifests.append(desc)

    def finish(self):
        with open(os.path.join(self.root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.manifests}, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--tiny", type=int, default=0)
    parser.add_argument("--single-mib", type=int, default=0)
    args = parser.parse_args()

    layout = Layout(args.out)
    for i in range(args.images):
        own = [(f"app{i}-{name}", mib) for name, mib in OWN_LAYERS]
        layout.image(f"app{i}", BASE_LAYERS + own)
    layout.image("small", BASE_LAYERS[:1])
    if args.big_mib > 0:
        layout.image("big", [("big", args.big_mib)])
    for i in range(args.tiny):
        layout.image(f"tiny{i}", [TINY_BASE, (f"tiny{i}-own", 0, TINY_OWN_KIB)])
    if args.single_mib > 0:
        layout.image("single", [("single", args.single_mib)])
    layout.finish()


if __name__ == "__main__":
    main()
