//! The command line of the new form (`image-transmit copy --from … --to …`). The original's
//! single-dash flags are read by `legacy.rs` and mapped onto the same commands.
//!
//! Every help text, in both languages, lives in the catalogs under `cli.*`: `help.rs` fills
//! them in (the key is `cli.<command>.<argument id>`, or `cli.option.<id>` for an option that
//! several commands share), so nothing here is written in only one language.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "image-transmit", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalOptions,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes: cfg.yaml also chooses the language of `verify` or `serve`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct GlobalOptions {
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[arg(long, global = true, value_name = "LANG")]
    pub(crate) lang: Option<String>,
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// skopeo's names for how to trust a source registry given on the command line.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SourceTls {
    #[arg(
        long = "src-tls-verify",
        id = "source_tls_verify",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) verify: Option<bool>,
    #[arg(long = "src-cert-dir", id = "source_cert_dir", value_name = "DIR")]
    pub(crate) cert_dir: Option<PathBuf>,
}

/// The same for the target registry.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TargetTls {
    #[arg(
        long = "dest-tls-verify",
        id = "target_tls_verify",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) verify: Option<bool>,
    #[arg(long = "dest-cert-dir", id = "target_cert_dir", value_name = "DIR")]
    pub(crate) cert_dir: Option<PathBuf>,
}

/// How hard the commands that move images work at it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TransferOptions {
    #[arg(long, value_name = "N")]
    pub(crate) maxconn: Option<usize>,
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,
    #[arg(long = "stall-timeout", id = "stall_timeout", value_name = "SECONDS")]
    pub(crate) stall_timeout: Option<u64>,
    #[arg(long = "limit-rate", id = "limit_rate", value_name = "RATE", value_parser = rate)]
    pub(crate) limit_rate: Option<u64>,
    #[arg(long = "chunk-size", id = "chunk_size", value_name = "SIZE", value_parser = chunk_size)]
    pub(crate) chunk_size: Option<u64>,
}

/// `--limit-rate`: bytes a second, as curl writes them (`50M`, `512K`).
fn rate(text: &str) -> Result<u64, String> {
    engine::rate::parse_rate(text).ok_or_else(|| text.to_string())
}

/// `--chunk-size`: an amount of bytes (`8M`), at least [`engine::rate::SMALLEST_UPLOAD_CHUNK`].
fn chunk_size(text: &str) -> Result<u64, String> {
    engine::rate::parse_chunk_size(text).ok_or_else(|| text.to_string())
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    Copy(CopyArgs),
    Save(SaveArgs),
    Upload(UploadArgs),
    Verify(VerifyArgs),
    Demo,
    Serve(ServeArgs),
    Load(LoadArgs),
    Cache(CacheArgs),
    Watch(WatchArgs),
    Ui(UiArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CopyArgs {
    #[arg(value_name = "SOURCE")]
    pub(crate) source: Option<String>,
    #[arg(value_name = "DESTINATION")]
    pub(crate) destination: Option<String>,
    #[arg(long, value_name = "SRC")]
    pub(crate) from: Option<String>,
    #[arg(long, value_name = "DST")]
    pub(crate) to: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    #[arg(long)]
    pub(crate) platform_as_manifest: bool,
    #[arg(long, value_name = "META")]
    pub(crate) base: Vec<PathBuf>,
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    #[command(flatten)]
    pub(crate) source_tls: SourceTls,
    #[command(flatten)]
    pub(crate) target_tls: TargetTls,
    #[command(flatten)]
    pub(crate) transfer: TransferOptions,
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SaveArgs {
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    #[arg(long = "incremental-from", value_name = "META")]
    pub(crate) incremental_from: Vec<PathBuf>,
    #[arg(long, value_name = "PREFIX")]
    pub(crate) out: Option<String>,
    #[arg(long)]
    pub(crate) single_file: bool,
    #[arg(long, value_name = "SIZE")]
    pub(crate) split_size: Option<String>,
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value_t,
        value_name = "FORMAT"
    )]
    pub(crate) format: BundleFormat,
    #[arg(long, value_enum, ignore_case = true, value_name = "COMPRESSOR")]
    pub(crate) compressor: Option<Compressor>,
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    #[arg(long)]
    pub(crate) fast: bool,
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    #[command(flatten)]
    pub(crate) source_tls: SourceTls,
    #[command(flatten)]
    pub(crate) transfer: TransferOptions,
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct UploadArgs {
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,
    #[arg(value_name = "META")]
    pub(crate) meta: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    #[arg(long = "image", value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    #[command(flatten)]
    pub(crate) target_tls: TargetTls,
    #[command(flatten)]
    pub(crate) transfer: TransferOptions,
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct VerifyArgs {
    #[arg(value_name = "META")]
    pub(crate) meta: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    #[arg(value_name = "META", required = true, num_args = 1..)]
    pub(crate) metas: Vec<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub(crate) listen: String,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct LoadArgs {
    #[arg(long, value_enum, ignore_case = true, value_name = "ENGINE")]
    pub(crate) to: Engine,
    #[arg(long, value_name = "SRC")]
    pub(crate) from: Option<String>,
    #[arg(value_name = "META | IMAGE")]
    pub(crate) inputs: Vec<String>,
    #[arg(long, value_name = "META")]
    pub(crate) base: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<PathBuf>,
    #[arg(long, value_name = "OS/ARCH")]
    pub(crate) platform: Option<String>,
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) namespace: Option<String>,
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) address: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub(crate) snapshotter: Option<String>,
    #[command(flatten)]
    pub(crate) source_tls: SourceTls,
    #[command(flatten)]
    pub(crate) transfer: TransferOptions,
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    pub(crate) action: CacheAction,
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum CacheAction {
    Ls,
    Prune,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct WatchArgs {
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,
    #[arg(long, value_name = "FILE")]
    pub(crate) list: PathBuf,
    #[arg(long, value_name = "SECS")]
    pub(crate) interval: Option<u64>,
    #[arg(long, value_name = "EXPR", conflicts_with = "interval")]
    pub(crate) cron: Option<String>,
    #[arg(long)]
    pub(crate) follow_mutable: bool,
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<PathBuf>,
    #[arg(long)]
    pub(crate) once: bool,
    #[arg(long, value_name = "OS/ARCH,…")]
    pub(crate) platform: Option<String>,
    #[arg(long)]
    pub(crate) platform_as_manifest: bool,
    #[command(flatten)]
    pub(crate) source_tls: SourceTls,
    #[command(flatten)]
    pub(crate) target_tls: TargetTls,
    #[command(flatten)]
    pub(crate) transfer: TransferOptions,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct UiArgs {
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub(crate) listen: String,
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

/// `save --format`: how a bundle's data files are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum BundleFormat {
    /// The original's: tar data files of `<hex>.tar.gz` entries and a meta.
    #[default]
    Tar,
    /// One file that `docker load` (and OCI tools) read, with a meta beside it.
    Docker,
    /// The same file, named for OCI tools.
    Oci,
}

/// `save --compressor` (and cfg.yaml `compressor:`): what the original's words ask for. Only
/// zstd changes what is written; squashfs and the GUI's whole-stream compressors are read, and
/// a request for them writes a tar bundle, which every reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Compressor {
    Tar,
    Zstd,
    #[value(hide = true)]
    Squashfs,
    #[value(hide = true)]
    Gzip,
    #[value(hide = true)]
    Xz,
    #[value(hide = true)]
    Lz4,
}

/// `load --to` (and the legacy `-dst`): the container engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Engine {
    /// The Docker Engine API (Podman's too).
    #[default]
    Docker,
    /// containerd, through `ctr`.
    #[value(alias = "ctr")]
    Containerd,
}

impl Engine {
    /// An engine by the names `--to` and `-dst` take, in any case.
    pub(crate) fn parse(name: &str) -> Option<Engine> {
        Engine::from_str(name, true).ok()
    }

    /// The engine's name as `--to` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Containerd => "containerd",
        }
    }
}
