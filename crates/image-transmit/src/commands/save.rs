//! `save` (and the legacy `-src=X -lst=F [-inc=META] [-out=PREFIX]`): images from a registry
//! into an offline bundle: tar data files plus a `_meta.yaml`, in `data/<YYYYMMDD>/`, named as
//! the original names them. With `--incremental-from`, blobs the base bundles carried are left
//! out and recorded as expected on the target.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use engine::bundle::archive::EntryLayout;
use engine::bundle::writer::{BaseBundle, BundleWriterOptions, Compression};
use engine::transport::Location;
use rust_i18n::t;

use super::pipeline::{self, JobRequest, parse_source};
use super::{JobSettings, UsageError};
use crate::cli::{BundleFormat, Compressor, SaveArgs};
use crate::config::Config;
use crate::messages::explain;

pub(crate) async fn run(args: &SaveArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let bundle = BundleSettings::resolve(
        config,
        args.format,
        args.compressor,
        &args.incremental_from,
        args.out.as_deref(),
        args.split_size.as_deref(),
        args.single_file,
        args.fast,
    )?;
    let settings = JobSettings::new(config, &args.transfer);
    // Local time, as the original named bundles.
    let day = Path::new("data").join(chrono::Local::now().format("%Y%m%d").to_string());
    let mut request = JobRequest::new(
        "save",
        parse_source(&args.from, config)?,
        Location::Bundle(day),
    );
    request.list = args.list.clone();
    request.images = args.images.clone();
    request.platform = args.platform.clone();
    request.source_tls = args.source_tls.clone();
    request.json = args.json.clone();
    request.bundle = Some(bundle);
    pipeline::run(request, config, &settings).await
}

/// How a bundle is written, from save's flags and cfg.yaml, checked before anything moves.
#[derive(Clone)]
pub(crate) struct BundleSettings {
    /// `--out` / `outprefix`: an optional sub-folder and a file name prefix.
    prefix: String,
    bases: Vec<BaseBundle>,
    layout: EntryLayout,
    compression: Compression,
    split_size: Option<u64>,
    single_file: bool,
    fast: bool,
}

impl BundleSettings {
    /// A bundle as cfg.yaml alone describes it (`copy … bundle:DIR`).
    pub(crate) fn from_config(config: &Config) -> anyhow::Result<BundleSettings> {
        BundleSettings::resolve(
            config,
            BundleFormat::Tar,
            None,
            &[],
            None,
            None,
            false,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resolve(
        config: &Config,
        format: BundleFormat,
        compressor: Option<Compressor>,
        incremental_from: &[PathBuf],
        out: Option<&str>,
        split_size: Option<&str>,
        single_file: bool,
        fast: bool,
    ) -> anyhow::Result<BundleSettings> {
        // cfg.yaml `dockerfile: true` asked the original for a docker-loadable single file.
        let layout = match format {
            BundleFormat::Tar if !config.dockerfile => EntryLayout::Original,
            BundleFormat::Tar | BundleFormat::Docker | BundleFormat::Oci => EntryLayout::Archive,
        };
        let split_size = split_size.map(parse_size).transpose().map_err(UsageError)?;
        let bases = incremental_from
            .iter()
            .map(|path| BaseBundle::from_meta(path).map_err(|e| UsageError(explain(&e))))
            .collect::<Result<Vec<_>, _>>()?;
        // cfg.yaml `compressor:` as the original read it (an empty word is none).
        let compressor = match compressor {
            Some(compressor) => Some(compressor),
            None => match config.compressor.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(word) => Some(Compressor::from_str(word, true).map_err(|_| {
                    UsageError(t!("error.unknown_compressor", compressor = word).to_string())
                })?),
            },
        };
        let compression = match compressor {
            Some(Compressor::Zstd) if layout == EntryLayout::Archive => {
                return Err(UsageError(t!("error.zstd_archive").to_string()).into());
            }
            Some(Compressor::Zstd) => Compression::Zstd,
            _ => Compression::None,
        };
        if layout == EntryLayout::Archive && !bases.is_empty() {
            // docker load and OCI tools need every layer in the one file.
            return Err(UsageError(t!("error.archive_needs_full").to_string()).into());
        }
        let prefix = out
            .map(str::to_string)
            .or_else(|| config.outprefix.clone())
            .unwrap_or_default();
        if !stays_inside(&prefix) {
            return Err(
                UsageError(t!("error.out_outside_data", prefix = prefix).to_string()).into(),
            );
        }
        Ok(BundleSettings {
            prefix,
            bases,
            layout,
            compression,
            split_size,
            single_file: single_file || config.singlefile,
            fast,
        })
    }

    /// The writer of a new bundle in `directory`, named as the original names them
    /// (`[prefix_]img_full_<YYYYMMDDHHmm>`, `…_2` if that is taken), its images keyed after
    /// `key_prefix`, with up to `parallel_parts` data files written at once.
    pub(crate) fn writer_options(
        &self,
        directory: &Path,
        key_prefix: String,
        parallel_parts: usize,
    ) -> BundleWriterOptions {
        let kind = if self.bases.is_empty() {
            "full"
        } else {
            "incr"
        };
        let work = format!("img_{kind}_{}", chrono::Local::now().format("%Y%m%d%H%M"));
        let (directory, work_name) = unused_location(directory, &self.prefix, &work);
        BundleWriterOptions {
            directory,
            work_name,
            parallel_parts: if self.single_file { 1 } else { parallel_parts },
            split_size: self.split_size,
            key_prefix,
            bases: self.bases.clone(),
            layout: self.layout,
            compression: self.compression,
            fast: self.fast,
            archive_only: false,
        }
    }
}

/// The original's key prefix: the source as configured, scheme included, path prefix not
/// (the repository already carries it).
pub(crate) fn key_prefix(configured: &str, host: &str) -> String {
    match configured.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{host}"),
        None => host.to_string(),
    }
}

/// Where a bundle goes: `outprefix` may carry a directory part (`proj/abc` → `…/proj/`,
/// files `abc_img_full_…`) or be a plain prefix (`abc`), which the original silently dropped.
fn output_location(day_directory: &Path, prefix: &str, work: &str) -> (PathBuf, String) {
    let (sub_directory, file_prefix) = match prefix.rfind(['/', '\\']) {
        Some(at) => (&prefix[..at], &prefix[at + 1..]),
        None => ("", prefix),
    };
    let directory = if sub_directory.is_empty() {
        day_directory.to_path_buf()
    } else {
        day_directory.join(sub_directory)
    };
    let work_name = if file_prefix.is_empty() {
        work.to_string()
    } else {
        format!("{file_prefix}_{work}")
    };
    (directory, work_name)
}

/// Whether an `--out` / `outprefix` keeps the bundle under `data/`: relative, no `..`, no drive.
fn stays_inside(prefix: &str) -> bool {
    !prefix.starts_with(['/', '\\'])
        && !prefix.contains(':')
        && prefix.split(['/', '\\']).all(|part| part != "..")
}

/// Like [`output_location`], but never the name of a bundle already there: two saves in the
/// same minute get `…_2`, `…_3` rather than overwriting the first.
fn unused_location(day_directory: &Path, prefix: &str, work: &str) -> (PathBuf, String) {
    let (directory, base) = output_location(day_directory, prefix, work);
    let taken = |name: &str| {
        ["_meta.yaml", "_0.tar", "_docker.tar"]
            .iter()
            .any(|suffix| directory.join(format!("{name}{suffix}")).exists())
    };
    let mut name = base.clone();
    let mut counter = 1;
    while taken(&name) {
        counter += 1;
        name = format!("{base}_{counter}");
    }
    (directory, name)
}

/// `4G`, `500M`, `64K` or plain bytes; binary units, as file size limits are usually meant.
fn parse_size(text: &str) -> Result<u64, String> {
    engine::rate::parse_bytes(text)
        // A part must hold at least a header and the end-of-archive marker.
        .filter(|&bytes| bytes >= 4096)
        .ok_or_else(|| t!("error.invalid_size", value = text).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("10").is_err());
    }

    #[test]
    fn plain_and_directory_prefixes_both_work() {
        let day = Path::new("data/20261123");
        assert_eq!(
            output_location(day, "", "img_full_1"),
            (day.to_path_buf(), "img_full_1".to_string())
        );
        assert_eq!(
            output_location(day, "proj", "img_full_1"),
            (day.to_path_buf(), "proj_img_full_1".to_string())
        );
        assert_eq!(
            output_location(day, "site/a/proj", "img_full_1"),
            (day.join("site/a"), "proj_img_full_1".to_string())
        );
        assert_eq!(
            output_location(day, "site\\", "img_full_1"),
            (day.join("site"), "img_full_1".to_string())
        );
    }

    #[test]
    fn keys_keep_the_configured_scheme() {
        assert_eq!(
            key_prefix("http://10.45.80.1/proj", "10.45.80.1"),
            "http://10.45.80.1"
        );
        assert_eq!(
            key_prefix("reg.local:5000", "reg.local:5000"),
            "reg.local:5000"
        );
    }
}
