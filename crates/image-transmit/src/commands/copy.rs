//! `copy SOURCE DESTINATION [IMAGE...]` (also `--from`/`--to`, and the legacy `-src -dst -lst`):
//! images from any location to any other (registries, bundles, OCI layouts, archives, a
//! container engine), through the one pipeline.

use std::process::ExitCode;

use rust_i18n::t;

use super::pipeline::{self, JobRequest, parse_destination, parse_source};
use super::{JobSettings, UsageError};
use crate::cli::CopyArgs;
use crate::config::Config;

pub(crate) async fn run(args: &CopyArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (from, to, images) = sides(args)?;
    let settings = JobSettings::new(config, &args.transfer);
    let mut request = JobRequest::new(
        "copy",
        parse_source(&from, config)?,
        parse_destination(&to, config)?,
    );
    request.list = args.list.clone();
    request.images = images;
    request.platform = args.platform.clone();
    request.platform_as_manifest = args.platform_as_manifest;
    request.source_tls = args.source_tls.clone();
    request.target_tls = args.target_tls.clone();
    request.json = args.json.clone();
    request.bases = args.base.clone();
    request.dry_run = args.dry_run;
    pipeline::run(request, config, &settings).await
}

/// The source, the destination and the images: `--from` and `--to` where given, else the
/// first words, in that order; every word after them is an image.
pub(crate) fn sides(args: &CopyArgs) -> anyhow::Result<(String, String, Vec<String>)> {
    let mut words = args
        .source
        .iter()
        .chain(&args.destination)
        .chain(&args.images)
        .cloned();
    let from = args.from.clone().or_else(|| words.next());
    let to = args.to.clone().or_else(|| words.next());
    match (from, to) {
        (Some(from), Some(to)) => Ok((from, to, words.collect())),
        _ => Err(UsageError(
            t!(
                "error.copy_needs_two_sides",
                program = crate::help::program_name()
            )
            .to_string(),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from: Option<&str>, to: Option<&str>, words: &[&str]) -> CopyArgs {
        let mut words = words.iter().map(|w| w.to_string());
        CopyArgs {
            source: words.next(),
            destination: words.next(),
            images: words.collect(),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..CopyArgs::default()
        }
    }

    #[test]
    fn flags_and_words_name_the_sides() {
        let (from, to, images) = sides(&args(None, None, &["a", "oci:b", "x:1", "y:2"])).unwrap();
        assert_eq!((from.as_str(), to.as_str()), ("a", "oci:b"));
        assert_eq!(images, ["x:1", "y:2"]);
        let (from, to, images) = sides(&args(Some("a"), Some("b"), &["x:1", "y:2"])).unwrap();
        assert_eq!((from.as_str(), to.as_str(), images.len()), ("a", "b", 2));
        let (from, to, images) = sides(&args(Some("a"), None, &["b", "x:1"])).unwrap();
        assert_eq!((from.as_str(), to.as_str()), ("a", "b"));
        assert_eq!(images, ["x:1"]);
        assert!(sides(&args(None, None, &["a"])).is_err());
    }
}
