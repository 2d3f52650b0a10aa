//! The command line of the new form (`image-transmit copy --from … --to …`). The original's
//! single-dash flags are read by `legacy.rs` and mapped onto the same commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "image-transmit",
    version,
    about = "Moves container images between registries"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalOptions,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct GlobalOptions {
    /// cfg.yaml to use (default: ./cfg.yaml, then ./data/cfg.yaml, then beside the binary)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Language of messages: zh_CN or en_US (default: cfg.yaml `lang`, then LANG)
    #[arg(long, global = true, value_name = "LANG")]
    pub(crate) lang: Option<String>,
    /// Write a machine-readable report of the job to this file
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Most blob transfers at once (cfg.yaml `maxconn`, default 5)
    #[arg(long, global = true, value_name = "N")]
    pub(crate) maxconn: Option<usize>,
    /// Extra attempts per failed image (cfg.yaml `retries`, default 2)
    #[arg(long, global = true, value_name = "N")]
    pub(crate) retries: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Copy images from one registry to another
    Copy(CopyArgs),
    /// Save images from a registry into an offline bundle (data files and a _meta.yaml)
    Save(SaveArgs),
    /// Upload an offline bundle into a registry
    Upload(UploadArgs),
    /// Check an offline bundle: data files, sizes, checksums and every blob's digest
    Verify(VerifyArgs),
    /// Show the whole offline path on a sample image: build, save, serve, copy, verify
    Demo,
    /// Serve offline bundles read-only over the registry API, for nodes to pull from
    Serve(ServeArgs),
    /// Load images into the local Docker or containerd, from a bundle or a registry
    Load(LoadArgs),
    /// Show or clean the blob cache (cfg.yaml `cache:`)
    Cache(CacheArgs),
    /// Copy every new tag of the listed repositories, again and again (a daemon)
    Watch(WatchArgs),
    /// Start the web UI on this machine and open it in the browser
    Ui(UiArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CopyArgs {
    /// Source registry: a `name` from cfg.yaml or an address such as http://10.0.0.1:5000
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,
    /// Target registry: a `name` from cfg.yaml or an address
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,
    /// Image list file, one image per line (`-` reads standard input)
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    /// Platforms to copy from multi-platform images, e.g. linux/amd64,linux/arm64
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    /// With one platform selected, push its manifest instead of a one-entry index
    #[arg(long)]
    pub(crate) platform_as_manifest: bool,
    /// Images to copy, in the list's syntax (`ns/app:1`, `ns/app:1->other/app:2`)
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SaveArgs {
    /// Source registry: a `name` from cfg.yaml or an address
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,
    /// Image list file, one image per line (`-` reads standard input)
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    /// Leave out every blob this earlier bundle carried (repeatable)
    #[arg(long = "incremental-from", value_name = "META")]
    pub(crate) incremental_from: Vec<PathBuf>,
    /// Output name prefix, optionally with a directory part (cfg.yaml `outprefix`)
    #[arg(long, value_name = "PREFIX")]
    pub(crate) out: Option<String>,
    /// Write one data file instead of one per parallel transfer (cfg.yaml `singlefile`)
    #[arg(long)]
    pub(crate) single_file: bool,
    /// Cap every data file at this size, e.g. 4G or 700M
    #[arg(long, value_name = "SIZE")]
    pub(crate) split_size: Option<String>,
    /// Bundle format: tar (data files the original tool can read too), or docker / oci (one
    /// file that `docker load`, OCI tools and this tool's upload all read)
    #[arg(long, default_value = "tar", value_name = "FORMAT")]
    pub(crate) format: String,
    /// Compress each data file: tar (none) or zstd (cfg.yaml `compressor`)
    #[arg(long, value_name = "COMPRESSOR")]
    pub(crate) compressor: Option<String>,
    /// Platforms to keep from multi-platform images, e.g. linux/amd64,linux/arm64
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    /// As the original: do not wait for the disk and record no checksum of whole data files
    /// (every blob's digest is still checked). Faster; a crash right after the save can lose
    /// the bundle, which `verify` then reports
    #[arg(long)]
    pub(crate) fast: bool,
    /// Images to save, in the list's syntax
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct UploadArgs {
    /// Target registry: a `name` from cfg.yaml or an address
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,
    /// The bundle's _meta.yaml
    #[arg(value_name = "META")]
    pub(crate) meta: PathBuf,
    /// Upload only the images in this list (`src -> new` renames)
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    /// Images to upload, as the bundle names them
    #[arg(long = "image", value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct VerifyArgs {
    /// The bundle's _meta.yaml
    #[arg(value_name = "META")]
    pub(crate) meta: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// The bundles' _meta.yaml files: a base and its increments (later ones win a shared tag)
    #[arg(value_name = "META", required = true, num_args = 1..)]
    pub(crate) metas: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub(crate) listen: String,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct LoadArgs {
    /// The container engine: docker (its API at DOCKER_HOST, default the local socket) or
    /// containerd (through `ctr`; also spelt ctr)
    #[arg(long, value_name = "ENGINE")]
    pub(crate) to: String,
    /// Load straight from this registry (a cfg.yaml `name` or an address) instead of a bundle
    #[arg(long, value_name = "SRC")]
    pub(crate) from: Option<String>,
    /// A bundle's _meta.yaml; with --from, images to load, in the list's syntax
    #[arg(value_name = "META | IMAGE")]
    pub(crate) inputs: Vec<String>,
    /// The bundle(s) an incremental bundle builds on, for the layers it leaves out (repeatable)
    #[arg(long, value_name = "META")]
    pub(crate) base: Vec<PathBuf>,
    /// Image list file (`-` reads standard input); `src -> new` renames the loaded image
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    /// The platform to load from multi-platform images (default: the engine's own)
    #[arg(long, value_name = "OS/ARCH")]
    pub(crate) platform: Option<String>,
    /// containerd namespace (default: CONTAINERD_NAMESPACE, else k8s.io, where the kubelet looks)
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// The engine's address: a DOCKER_HOST value for docker, the socket for containerd
    /// (default: DOCKER_HOST / CONTAINERD_ADDRESS, else the engine's usual socket)
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) address: Option<String>,
    /// containerd snapshotter to unpack into (default: containerd's own)
    #[arg(long, value_name = "NAME")]
    pub(crate) snapshotter: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    pub(crate) action: CacheAction,
    /// The cache directory (default: cfg.yaml `cache.pathname`)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum CacheAction {
    /// List the cached blobs, least recently used first
    Ls,
    /// Remove blobs unused for keepdays, then the least recently used beyond keepsize
    Prune,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct WatchArgs {
    /// Source registry: a `name` from cfg.yaml or an address
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,
    /// Target registry: a `name` from cfg.yaml or an address
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,
    /// Watch list: `ns/repo:MINTAG [include=RE] [exclude=RE] [semver=RANGE] [-> ns2/repo2]`
    #[arg(long, value_name = "FILE")]
    pub(crate) list: PathBuf,
    /// Seconds between cycles (cfg.yaml `interval`, default 60)
    #[arg(long, value_name = "SECS")]
    pub(crate) interval: Option<u64>,
    /// Start cycles on a cron schedule instead, e.g. "*/10 * * * *"
    #[arg(long, value_name = "EXPR", conflicts_with = "interval")]
    pub(crate) cron: Option<String>,
    /// Copy a tag again when its digest on the source moved (mutable tags such as latest)
    #[arg(long)]
    pub(crate) follow_mutable: bool,
    /// Serve /healthz and Prometheus /metrics on this address
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// The history file (default data/history.yaml)
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<PathBuf>,
    /// Run one cycle and exit (1 when anything failed): for a cron job or a check
    #[arg(long)]
    pub(crate) once: bool,
    /// Platforms to copy from multi-platform images, e.g. linux/amd64,linux/arm64
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    /// With one platform selected, push its manifest instead of a one-entry index
    #[arg(long)]
    pub(crate) platform_as_manifest: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct UiArgs {
    /// Loopback address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub(crate) listen: String,
    /// Print the address but do not open a browser
    #[arg(long)]
    pub(crate) no_open: bool,
}

impl Default for UiArgs {
    fn default() -> UiArgs {
        UiArgs {
            listen: "127.0.0.1:0".to_string(),
            no_open: false,
        }
    }
}
