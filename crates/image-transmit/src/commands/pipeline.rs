//! The one job pipeline behind `copy SOURCE DESTINATION`: each side, named as a [`Location`],
//! is opened into an image source or destination; the list is planned with how each side
//! names images; one check before any image; the job; the destination's finish; the report
//! and exit status. A new transport is one arm in [`open_source`] or [`open_destination`]
//! (and its file in `engine::transport`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use engine::bundle::chain::BundleChain;
use engine::bundle::reader::BundleReader;
use engine::bundle::writer::{BundleWriter, BundleWriterOptions};
use engine::plan::{self, ImagePair, InvalidLine, ListOptions, RegistryAddress};
use engine::precheck::{LackingBlob, lacking_blobs};
use engine::transport::oci_layout::{OciLayoutDestination, OciLayoutSource};
use engine::transport::registry::{RegistryDestination, RegistrySource};
use engine::transport::{ImageDestination, ImageSource, Location, LocationError, TRANSPORTS};
use engine::{CopyOptions, PlatformFilter};
use futures_util::StreamExt;
use registry::{Digest, Registry};
use rust_i18n::t;

use super::save::BundleSettings;
use super::{
    JobSettings, RunError, Sink, UsageError, check_both_sides, finish, list_endpoint, open_source,
    open_target, platform_filters, read_lines, run_job,
};
use crate::cli::{SourceTls, TargetTls};
use crate::config::Config;
use crate::messages::{explain, explain_for};
use crate::printer::{alert, problem, say};

/// What a job was asked to do, after the command line is read: every command fills one in.
pub(crate) struct JobRequest {
    /// The command's name, for notifications and `--json`.
    pub(crate) command: &'static str,
    pub(crate) source: Location,
    pub(crate) destination: Location,
    pub(crate) list: Option<PathBuf>,
    pub(crate) images: Vec<String>,
    pub(crate) platform: Option<String>,
    pub(crate) platform_as_manifest: bool,
    pub(crate) source_tls: SourceTls,
    pub(crate) target_tls: TargetTls,
    pub(crate) json: Option<PathBuf>,
    /// The bundles an incremental bundle builds on, read with it into anything but a registry.
    pub(crate) bases: Vec<PathBuf>,
    /// How a bundle destination is written; `None`: as cfg.yaml says.
    pub(crate) bundle: Option<BundleSettings>,
    /// containerd's snapshotter and socket, when not the default.
    pub(crate) snapshotter: Option<String>,
    pub(crate) containerd_address: Option<String>,
    /// Plan and check only: show what would be copied, move nothing.
    pub(crate) dry_run: bool,
}

impl JobRequest {
    pub(crate) fn new(command: &'static str, source: Location, destination: Location) -> Self {
        JobRequest {
            command,
            source,
            destination,
            list: None,
            images: Vec::new(),
            platform: None,
            platform_as_manifest: false,
            source_tls: SourceTls::default(),
            target_tls: TargetTls::default(),
            json: None,
            bases: Vec::new(),
            bundle: None,
            snapshotter: None,
            containerd_address: None,
            dry_run: false,
        }
    }
}

/// Parses the source side: a cfg.yaml source's name is a registry whatever it looks like, as
/// in the original; else a transport reference or an address.
pub(crate) fn parse_source(text: &str, config: &Config) -> anyhow::Result<Location> {
    if config.find_source(text).is_ok() {
        return Ok(Location::Registry(text.to_string()));
    }
    parse_location(text)
}

/// Parses the destination side: `docker`, `ctr` and `containerd` are the engines even when
/// cfg.yaml has a target of that name (which then names what is loaded, see `load`).
pub(crate) fn parse_destination(text: &str, config: &Config) -> anyhow::Result<Location> {
    match Location::parse(text) {
        Ok(engine) if engine.is_engine() => Ok(engine),
        _ if config.find_target(text).is_ok() => Ok(Location::Registry(text.to_string())),
        _ => parse_location(text),
    }
}

/// Parses one side of a copy, in one sentence when it cannot be.
fn parse_location(text: &str) -> anyhow::Result<Location> {
    Location::parse(text).map_err(|error| {
        let sentence = match error {
            LocationError::MissingPath { transport } => {
                t!("error.location_needs_path", transport = transport)
            }
            LocationError::UnknownTransport { name } => t!(
                "error.unknown_transport",
                name = name,
                known = TRANSPORTS.join(" ")
            ),
        };
        UsageError(sentence.to_string()).into()
    })
}

/// A source, opened.
struct OpenedSource {
    source: SourceHandle,
    /// How list lines address it; `None`: lines are its own names, used verbatim.
    endpoint: Option<RegistryAddress>,
    /// The registry, checked once before any image.
    registry: Option<Registry>,
    /// For files that hold images (bundles, layouts, archives): every image, the list of a
    /// job given none.
    all_images: Option<Vec<String>>,
    /// The registry as configured (scheme kept), which bundle keys start with.
    configured: Option<String>,
    /// For the report and messages.
    described: String,
}

enum SourceHandle {
    Ready(Arc<dyn ImageSource>),
    /// A bundle going into a registry: where its base blobs are on the target is found once
    /// the target is open ([`super::upload::settle_bases`]).
    BundleForRegistry(Box<BundleReader>),
}

/// A bundle or archive to read, checked: every data file whole.
fn open_bundle(path: &Path) -> anyhow::Result<BundleReader> {
    super::upload::refuse_damaged_parts(path)?;
    let reader = BundleReader::open(path).map_err(|e| RunError(explain(&e)))?;
    super::upload::warn_rewritten(&reader);
    Ok(reader)
}

fn open_source_location(
    request: &JobRequest,
    config: &Config,
    settings: &JobSettings,
) -> anyhow::Result<OpenedSource> {
    let location = &request.source;
    let file_source = |source: SourceHandle, images: Vec<String>, path: &Path| OpenedSource {
        source,
        endpoint: None,
        registry: None,
        all_images: Some(images),
        configured: None,
        described: path.display().to_string(),
    };
    match location {
        Location::Registry(name) => {
            let (entry, registry) = open_source(config, settings, name, &request.source_tls)?;
            Ok(OpenedSource {
                source: SourceHandle::Ready(Arc::new(RegistrySource::new(registry.clone()))),
                endpoint: Some(list_endpoint(&registry)),
                described: registry.host().to_string(),
                registry: Some(registry),
                all_images: None,
                configured: Some(entry.registry),
            })
        }
        Location::Bundle(path) | Location::OciArchive(path) | Location::DockerArchive(path) => {
            if path.is_dir() {
                return Err(UsageError(
                    t!("error.bundle_source_is_folder", path = path.display()).to_string(),
                )
                .into());
            }
            let reader = open_bundle(path)?;
            let images = reader.image_keys();
            // Into a registry an increment's base blobs may already be there (checked before
            // the job); anywhere else they must travel, and an increment alone lacks them.
            let source = match &request.destination {
                Location::Registry(_) => SourceHandle::BundleForRegistry(Box::new(reader)),
                _ => SourceHandle::Ready(Arc::new(whole_chain(reader, &request.bases)?)),
            };
            Ok(file_source(source, images, path))
        }
        Location::OciLayout(path) => {
            let layout = OciLayoutSource::open(path).map_err(|e| RunError(explain(&e)))?;
            let images = layout.image_names();
            Ok(file_source(
                SourceHandle::Ready(Arc::new(layout)),
                images,
                path,
            ))
        }
        Location::DockerDaemon { .. } | Location::Containerd { .. } => Err(UsageError(
            t!(
                "error.engine_is_not_a_source",
                location = location.to_string()
            )
            .to_string(),
        )
        .into()),
    }
}

/// A bundle read with the bundles it builds on; what together they lack is found before the
/// job ([`lacking_blobs`]).
fn whole_chain(reader: BundleReader, bases: &[PathBuf]) -> anyhow::Result<BundleChain> {
    let bases = bases
        .iter()
        .map(|base| open_bundle(base))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(BundleChain::new(reader, bases))
}

/// An increment going where no earlier blobs are kept (an engine, a file) without the bundles
/// it builds on.
fn engine_or_file_lacks(lacking: &[LackingBlob]) -> String {
    let mut digests: Vec<&registry::Digest> = lacking.iter().map(|blob| &blob.digest).collect();
    digests.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    digests.dedup();
    let lines: Vec<String> = digests.iter().map(|d| format!("  {d}")).collect();
    format!(
        "{}\n{}",
        t!("load.missing_blobs", count = digests.len()),
        lines.join("\n")
    )
}

/// A destination, opened.
struct OpenedDestination {
    sink: Sink,
    /// How list lines address it (a registry); `None` for files and engines.
    endpoint: Option<RegistryAddress>,
    /// cfg.yaml `repository:` of the target entry: the namespace that replaces the source's.
    namespace: Option<String>,
    registry: Option<Registry>,
    /// Bundles record each image under its source name, renames left to the upload.
    keeps_source_names: bool,
    /// A container engine: the platform it runs and its name for messages.
    engine: Option<(PlatformFilter, &'static str)>,
    /// The host loaded images are named with, from a cfg.yaml target entry named like the
    /// engine; else the source's.
    loaded_host: Option<String>,
    described: String,
}

/// What a destination that writes files names its images after: `HOST/PATH:TAG`.
struct Naming {
    /// The registry images come from, as configured (`http://10.0.0.1:5000`), for bundle keys.
    configured: Option<String>,
    /// Its host, which archives, layouts and engines put before each name.
    host: Option<String>,
}

async fn open_destination_location(
    request: &JobRequest,
    config: &Config,
    settings: &JobSettings,
    naming: &Naming,
    images: usize,
) -> anyhow::Result<OpenedDestination> {
    let location = &request.destination;
    let fail = |error: engine::Error| RunError(explain(&error));
    let file_destination =
        |sink: Arc<dyn ImageDestination>, keeps_source_names: bool| OpenedDestination {
            described: location.to_string(),
            sink: Sink::Pieces(sink),
            endpoint: None,
            namespace: None,
            registry: None,
            keeps_source_names,
            engine: None,
            loaded_host: None,
        };
    let host_prefix = naming.host.clone().unwrap_or_default();
    match location {
        Location::Registry(name) => {
            let (entry, registry) = open_target(config, settings, name, &request.target_tls)?;
            Ok(OpenedDestination {
                sink: Sink::Pieces(Arc::new(RegistryDestination::new(registry.clone()))),
                endpoint: Some(list_endpoint(&registry)),
                namespace: entry.repository.clone().filter(|n| !n.is_empty()),
                described: registry.host().to_string(),
                registry: Some(registry),
                keeps_source_names: false,
                engine: None,
                loaded_host: None,
            })
        }
        Location::Bundle(directory) => {
            if directory.is_file() {
                return Err(UsageError(
                    t!(
                        "error.bundle_destination_is_file",
                        path = directory.display()
                    )
                    .to_string(),
                )
                .into());
            }
            let bundle = match &request.bundle {
                Some(bundle) => bundle.clone(),
                None => BundleSettings::from_config(config)?,
            };
            let key_prefix = match (&naming.configured, &naming.host) {
                (Some(configured), Some(host)) => super::save::key_prefix(configured, host),
                _ => host_prefix,
            };
            let writer = BundleWriter::new(bundle.writer_options(
                directory,
                key_prefix,
                settings.max_connections.min(images.max(1)),
            ))
            .map_err(fail)?;
            Ok(file_destination(Arc::new(writer), true))
        }
        Location::OciLayout(directory) => {
            let layout = OciLayoutDestination::open(directory, host_prefix).map_err(fail)?;
            Ok(file_destination(Arc::new(layout), false))
        }
        Location::OciArchive(path) | Location::DockerArchive(path) => {
            if path.exists() {
                return Err(UsageError(
                    t!("error.archive_exists", path = path.display()).to_string(),
                )
                .into());
            }
            let writer =
                BundleWriter::new(BundleWriterOptions::archive(path, host_prefix)).map_err(fail)?;
            Ok(file_destination(Arc::new(writer), false))
        }
        Location::DockerDaemon { address } => {
            let opened =
                super::load::open_engine(super::load::Engine::Docker, address.clone(), None, None)
                    .await?;
            Ok(engine_destination(location, opened, config, &["docker"]))
        }
        Location::Containerd { namespace } => {
            let opened = super::load::open_engine(
                super::load::Engine::Containerd,
                request.containerd_address.clone(),
                namespace.clone(),
                request.snapshotter.clone(),
            )
            .await?;
            Ok(engine_destination(
                location,
                opened,
                config,
                &["ctr", "containerd"],
            ))
        }
    }
}

/// A loaded image is named `HOST/PATH:TAG` (see `load`): a cfg.yaml target entry named like
/// the engine gives HOST and the namespace of PATH.
fn engine_destination(
    location: &Location,
    opened: super::load::OpenedEngine,
    config: &Config,
    entry_names: &[&str],
) -> OpenedDestination {
    let entry = entry_names
        .iter()
        .find_map(|name| config.find_target(name).ok());
    OpenedDestination {
        sink: opened.sink,
        endpoint: None,
        namespace: entry
            .and_then(|entry| entry.repository.clone())
            .filter(|namespace| !namespace.is_empty()),
        registry: None,
        keeps_source_names: false,
        engine: Some((opened.platform, opened.name)),
        loaded_host: entry
            .and_then(|entry| entry.registry.parse::<RegistryAddress>().ok())
            .map(|endpoint| endpoint.to_string()),
        described: location.to_string(),
    }
}

/// The host a source's images are known by: a registry's, or the one a bundle's keys carry.
fn naming_host(source: &OpenedSource, pairs: &[ImagePair]) -> Option<String> {
    match &source.endpoint {
        Some(endpoint) => Some(endpoint.host.clone()),
        None => pairs
            .iter()
            .find_map(|pair| super::load::key_host(&pair.source_text)),
    }
}

/// A job opened, planned and checked, nothing moved yet: what `--dry-run` and the web UI's
/// Verify show, and what [`run`] then carries out.
pub(crate) struct PreparedJob {
    source: Arc<dyn ImageSource>,
    /// The source for messages and reports.
    source_described: String,
    destination: OpenedDestination,
    pub(crate) pairs: Vec<ImagePair>,
    pub(crate) invalid: Vec<InvalidLine>,
    options: CopyOptions,
}

impl PreparedJob {
    /// The destination as messages name it (a registry's host).
    pub(crate) fn destination_described(&self) -> &str {
        &self.destination.described
    }
}

/// Runs `request`: the whole pipeline from two locations to an exit status.
pub(crate) async fn run(
    request: JobRequest,
    config: &Config,
    settings: &JobSettings,
) -> anyhow::Result<ExitCode> {
    let job = prepare(&request, config, settings).await?;
    if request.dry_run {
        return Ok(show_plan(&job).await);
    }
    execute(job, &request, settings).await
}

/// Opens both sides, plans the list, and checks what can be checked before anything moves:
/// both sides answer, the data files are whole, and every blob the images need is at hand.
pub(crate) async fn prepare(
    request: &JobRequest,
    config: &Config,
    settings: &JobSettings,
) -> anyhow::Result<PreparedJob> {
    if !request.source.is_readable() {
        return Err(UsageError(
            t!(
                "error.engine_is_not_a_source",
                location = request.source.to_string()
            )
            .to_string(),
        )
        .into());
    }
    let source = open_source_location(request, config, settings)?;
    let lines = match (&source.all_images, &request.list, request.images.is_empty()) {
        (Some(all), None, true) => all.clone(),
        _ => read_lines(request.list.as_deref(), &request.images)?,
    };
    let plan_without_target = ListOptions {
        source: source.endpoint.clone(),
        target: None,
        target_namespace: None,
    };
    let (first_plan, _) = plan::plan(&lines, &plan_without_target);
    let naming = Naming {
        configured: source.configured.clone(),
        host: naming_host(&source, &first_plan),
    };
    let destination =
        open_destination_location(request, config, settings, &naming, first_plan.len()).await?;
    let options = ListOptions {
        source: source.endpoint.clone(),
        target: destination.endpoint.clone(),
        target_namespace: destination.namespace.clone(),
    };
    let (mut pairs, invalid) = plan::plan(&lines, &options);
    // A file keeps each image under its source name unless the line renames it; a bundle
    // always does, as the original's, leaving renames to the upload. An engine's names are
    // `load`'s.
    for pair in &mut pairs {
        let renamed = pair.line.contains("->");
        let file = destination.endpoint.is_none() && destination.engine.is_none();
        if destination.keeps_source_names || (file && !renamed) {
            pair.target = pair.source.clone();
        }
    }

    check_before_any_image(&source, &destination, settings, &pairs).await?;
    // A bundle into a registry: which base bundle to upload first, if its blobs are missing.
    let mut bundle = None;
    let image_source: Arc<dyn ImageSource> = match source.source {
        SourceHandle::Ready(ready) => ready,
        SourceHandle::BundleForRegistry(mut reader) => {
            if let Some(target) = &destination.registry {
                super::upload::settle_bases(&mut reader, target, &options).await;
            }
            let reader = Arc::new(*reader);
            bundle = Some(reader.clone());
            reader
        }
    };
    let mut platforms = platform_filters(request.platform.as_deref(), config)?;
    if let Some((platform, name)) = &destination.engine {
        say_platform(&platforms, platform, name);
        if platforms.is_empty() {
            platforms = vec![platform.clone()];
        }
    }
    let copy_options = CopyOptions {
        loaded_name_host: destination.loaded_host.clone().or(naming.host.clone()),
        ..settings.copy_options(platforms, request.platform_as_manifest)
    };
    let lacking = lacking_blobs(
        image_source.as_ref(),
        Some(&destination.sink),
        &copy_options,
        &pairs,
    )
    .await
    .map_err(|e| RunError(explain(&e)))?;
    if !lacking.is_empty() {
        return Err(RunError(match (&destination.registry, &bundle) {
            (Some(target), Some(bundle)) => {
                super::upload::base_blobs_missing(bundle, target, &lacking)
            }
            _ => engine_or_file_lacks(&lacking),
        })
        .into());
    }
    Ok(PreparedJob {
        source: image_source,
        source_described: source.described,
        destination,
        pairs,
        invalid,
        options: copy_options,
    })
}

/// Moves the images of a prepared job, finishes the destination, reports.
async fn execute(
    job: PreparedJob,
    request: &JobRequest,
    settings: &JobSettings,
) -> anyhow::Result<ExitCode> {
    let PreparedJob {
        source,
        source_described,
        mut destination,
        pairs,
        invalid,
        options,
    } = job;
    let report = run_job(
        request.command,
        source,
        destination.sink.clone(),
        options,
        settings,
        pairs,
        invalid,
    )
    .await;
    if let Sink::Pieces(writer) = &destination.sink
        && let Some(written) = writer.finish().await.map_err(|e| RunError(explain(&e)))?
    {
        // A bundle's meta is announced in the original's words, which scripts look for, and
        // is what the report names.
        let key = if destination.keeps_source_names {
            destination.described = written.display().to_string();
            "save.meta_written"
        } else {
            "copy.written"
        };
        {
            say!("{}", t!(key, path = written.display()));
        }
    }
    if let Some(chunk) = destination
        .registry
        .as_ref()
        .and_then(Registry::learned_chunk)
    {
        // What the job learned the hard way, offered for the next one.
        let size = format!("{}M", (chunk >> 20).max(1));
        alert!(
            "{}",
            t!(
                "copy.chunks_learned",
                host = &destination.described,
                size = size
            )
        );
    }
    if let Some(path) = &request.json {
        crate::report::write(
            path,
            request.command,
            &source_described,
            &destination.described,
            &report,
        )?;
    }
    Ok(finish(&report))
}

/// One image of a prepared job, looked up on both sides: what `--dry-run` and the web UI's
/// Verify show.
pub(crate) struct PlannedImage {
    pub(crate) line: String,
    pub(crate) source: String,
    pub(crate) target: String,
    /// Its digest on the source, or why it was not found there.
    pub(crate) found: Result<Digest, String>,
    /// The destination already names exactly this image.
    pub(crate) unchanged: bool,
}

/// Looks every planned image up: on the source, and whether the destination has it already.
pub(crate) async fn look_up(job: &PreparedJob) -> Vec<PlannedImage> {
    let parallel = job.options.max_connections.max(1);
    futures_util::stream::iter(job.pairs.iter().cloned())
        .map(|pair| async move {
            let found = job
                .source
                .manifest(&pair.source.repository, &pair.source.reference.to_string())
                .await
                .map(|manifest| manifest.digest)
                .map_err(|error| explain_for(&pair.line, &error));
            let unchanged = match (&found, &job.destination.sink) {
                (Ok(digest), Sink::Pieces(destination)) => destination
                    .manifest_digest(&pair.target.repository, &pair.target.reference.to_string())
                    .await
                    .is_ok_and(|present| present.as_ref() == Some(digest)),
                _ => false,
            };
            PlannedImage {
                line: pair.line.clone(),
                source: format!("{}/{}", job.source_described, pair.source),
                target: format!("{}/{}", job.destination.described, pair.target),
                found,
                unchanged,
            }
        })
        .buffered(parallel)
        .collect()
        .await
}

/// `--dry-run`: each image with what would happen to it, the invalid lines, a summary; exit
/// status 1 when an image is missing or a line invalid, as the job itself would end.
async fn show_plan(job: &PreparedJob) -> ExitCode {
    let planned = look_up(job).await;
    let (mut to_copy, mut unchanged, mut problems) = (0, 0, job.invalid.len());
    for image in &planned {
        let state = match &image.found {
            Ok(_) if image.unchanged => {
                unchanged += 1;
                t!("plan.unchanged").to_string()
            }
            Ok(_) => {
                to_copy += 1;
                t!("plan.to_copy").to_string()
            }
            Err(reason) => {
                problems += 1;
                reason.clone()
            }
        };
        say!("{} -> {}: {state}", image.source, image.target);
    }
    for line in &job.invalid {
        let error = engine::Error::from(line.reason.clone());
        problem!("  {}: {}", line.line, explain_for(&line.line, &error));
    }
    say!(
        "{}",
        t!(
            "plan.summary",
            to_copy = to_copy,
            unchanged = unchanged,
            problems = problems
        )
    );
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One clear error for an unreachable registry or a wrong password, not one per image; for a
/// bundle into a registry, the blobs it leaves to its bases must be there.
async fn check_before_any_image(
    source: &OpenedSource,
    destination: &OpenedDestination,
    settings: &JobSettings,
    pairs: &[ImagePair],
) -> anyhow::Result<()> {
    let Some(first) = pairs.first() else {
        return Ok(());
    };
    check_both_sides(
        source
            .registry
            .as_ref()
            .map(|registry| (registry, first.source.repository.as_str())),
        destination
            .registry
            .as_ref()
            .map(|registry| (registry, first.target.repository.as_str())),
        settings,
    )
    .await
}
fn say_platform(chosen: &[PlatformFilter], engine_platform: &PlatformFilter, engine: &str) {
    let (key, platforms) = match chosen {
        [] => ("load.platform", vec![engine_platform.clone()]),
        chosen => ("load.platform_chosen", chosen.to_vec()),
    };
    let label = platforms
        .iter()
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect::<Vec<_>>()
        .join(",");
    say!("{}", t!(key, platform = label, engine = engine));
}
