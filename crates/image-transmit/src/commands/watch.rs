//! `watch` (and the legacy `-src -dst -lst -watch`): a daemon that copies every new tag of the
//! listed repositories, cycle after cycle. What a cycle copies is the engine's business
//! (`engine::watch`); this file runs the loop: history, the pause between cycles (seconds or
//! a cron expression), the graceful stop on SIGTERM / Ctrl-C (the image in flight finishes,
//! nothing new starts), one summary line per cycle, and `/healthz` + `/metrics` for whoever
//! runs it as a service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use engine::plan::ListOptions;
use engine::transport::registry::{RegistryDestination, RegistrySource};
use engine::watch::{History, WatchLine, plan_cycle};
use engine::{CopyOptions, ImageStatus};
use rust_i18n::t;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{
    JobSettings, RunError, Sink, UsageError, check_both_sides, list_endpoint, open_source,
    open_target, platform_filters, read_lines, run_job, stop_signal,
};
use crate::cli::WatchArgs;
use crate::config::Config;
use crate::messages::explain;
use crate::printer::{alert, say};
use crate::status_format::format_bytes;

/// Where the original keeps its history, relative to the working directory.
const HISTORY: &str = "data/history.yaml";

/// What `/metrics` reports, updated at the end of every cycle.
#[derive(Default)]
struct Metrics {
    cycles: AtomicU64,
    images_copied: AtomicU64,
    images_failed: AtomicU64,
    bytes: AtomicU64,
    repositories_failed: AtomicU64,
    last_cycle_end_seconds: AtomicU64,
    last_cycle_milliseconds: AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
        let counter = |name: &str, help: &str, value: u64| {
            format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n")
        };
        let gauge = |name: &str, help: &str, value: String| {
            format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n")
        };
        [
            counter(
                "image_transmit_watch_cycles_total",
                "Watch cycles completed.",
                self.cycles.load(Relaxed),
            ),
            counter(
                "image_transmit_images_copied_total",
                "Images copied by the watch daemon.",
                self.images_copied.load(Relaxed),
            ),
            counter(
                "image_transmit_images_failed_total",
                "Image copies that failed (retried next cycle).",
                self.images_failed.load(Relaxed),
            ),
            counter(
                "image_transmit_bytes_total",
                "Blob bytes transferred.",
                self.bytes.load(Relaxed),
            ),
            counter(
                "image_transmit_repository_list_failures_total",
                "Repositories whose tags could not be listed in a cycle.",
                self.repositories_failed.load(Relaxed),
            ),
            gauge(
                "image_transmit_last_cycle_timestamp_seconds",
                "When the last cycle ended, in seconds since the epoch.",
                self.last_cycle_end_seconds.load(Relaxed).to_string(),
            ),
            gauge(
                "image_transmit_last_cycle_duration_seconds",
                "How long the last cycle took.",
                format!(
                    "{:.3}",
                    self.last_cycle_milliseconds.load(Relaxed) as f64 / 1000.0
                ),
            ),
        ]
        .concat()
    }
}

/// When the next cycle starts.
enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    fn from_args(args: &WatchArgs, config: &Config) -> anyhow::Result<Schedule> {
        let cron = args.cron.as_ref().or(if args.interval.is_some() {
            None
        } else {
            config.interval_cron.as_ref()
        });
        if let Some(expression) = cron {
            let cron = croner::Cron::new(expression).parse().map_err(|e| {
                UsageError(
                    t!("watch.bad_cron", cron = expression, detail = e.to_string()).to_string(),
                )
            })?;
            return Ok(Schedule::Cron(Box::new(cron)));
        }
        let seconds = args.interval.filter(|s| *s > 0).unwrap_or(config.interval);
        Ok(Schedule::Every(Duration::from_secs(seconds)))
    }

    fn pause(&self) -> Duration {
        match self {
            Schedule::Every(interval) => *interval,
            Schedule::Cron(cron) => {
                let now = chrono::Local::now();
                cron.find_next_occurrence(&now, false)
                    .ok()
                    .and_then(|next| (next - now).to_std().ok())
                    .unwrap_or(Duration::from_secs(60))
            }
        }
    }
}

pub(crate) async fn run(args: &WatchArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let settings = JobSettings {
        notify_each_image: true,
        ..JobSettings::new(config, &args.transfer)
    };
    let (_, source) = open_source(config, &settings, &args.from, &args.source_tls)?;
    let (target_entry, target) = open_target(config, &settings, &args.to, &args.target_tls)?;
    let platforms = platform_filters(args.platform.as_deref(), config)?;
    let schedule = Schedule::from_args(args, config)?;

    let options = ListOptions {
        source: Some(list_endpoint(&source)),
        target: Some(list_endpoint(&target)),
        target_namespace: target_entry.repository.clone().filter(|n| !n.is_empty()),
    };
    let mut lines = Vec::new();
    for text in read_lines(Some(args.list.as_path()), &[])? {
        match WatchLine::parse(&text, &options) {
            Ok(line) => lines.push(line),
            Err(error) => alert!(
                "{}",
                t!(
                    "watch.bad_line",
                    line = text,
                    detail = explain(&engine::Error::from(error))
                )
            ),
        }
    }
    if lines.is_empty() {
        return Err(UsageError(t!("watch.no_lines").to_string()).into());
    }
    if let Some(first) = lines.first() {
        check_both_sides(
            Some((&source, &first.source)),
            Some((&target, &first.target)),
            &settings,
        )
        .await?;
    }

    let history_path = args
        .history
        .clone()
        .unwrap_or_else(|| PathBuf::from(HISTORY));
    let mut history = History::load(&history_path).map_err(|e| RunError(explain(&e)))?;
    let metrics = Arc::new(Metrics::default());
    if let Some(address) = &args.listen {
        serve_metrics(address, metrics.clone()).await?;
    }
    let stop = CancellationToken::new();
    stop_on_signals(stop.clone());
    say!(
        "{}",
        t!(
            "watch.started",
            lines = lines.len(),
            from = source.host(),
            to = target.host(),
            history = history.len()
        )
    );

    let mut cycle = 0u64;
    let mut any_failed = false;
    loop {
        cycle += 1;
        let started = Instant::now();
        let plan = plan_cycle(
            &source,
            &target,
            &lines,
            &history,
            args.follow_mutable,
            settings.max_connections,
        )
        .await;
        for (line, error) in &plan.failures {
            alert!(
                "{}",
                t!("watch.list_failed", line = line, detail = explain(error))
            );
        }
        let (mut copied, mut failed, mut bytes) = (0, 0, 0);
        if !plan.pairs.is_empty() {
            let options = CopyOptions {
                stop_starting: Some(stop.clone()),
                ..settings.copy_options(platforms.clone(), args.platform_as_manifest)
            };
            let report = run_job(
                "watch",
                Arc::new(RegistrySource::new(source.clone())),
                Sink::Pieces(Arc::new(RegistryDestination::new(target.clone()))),
                options,
                &settings,
                plan.pairs,
                Vec::new(),
            )
            .await;
            let now = chrono::Local::now().format("%Y%m%d%H%M%S").to_string();
            for image in &report.images {
                match &image.status {
                    ImageStatus::Succeeded { .. } => {
                        history.record(&image.line, &now);
                        copied += 1;
                    }
                    ImageStatus::Failed { error } => {
                        failed += 1;
                        alert!(
                            "{}",
                            t!(
                                "watch.image_failed",
                                image = image.line,
                                detail = explain(error)
                            )
                        );
                    }
                }
            }
            bytes = report.bytes_transferred;
            if copied > 0
                && let Err(error) = history.save()
            {
                alert!("{}", explain(&error));
            }
        }
        any_failed |= failed > 0 || !plan.failures.is_empty();
        let elapsed = started.elapsed();
        record(
            &metrics,
            copied,
            failed,
            bytes,
            plan.failures.len(),
            elapsed,
        );
        say!(
            "{}",
            t!(
                "watch.cycle",
                cycle = cycle,
                copied = copied,
                failed = failed,
                known = plan.already_copied,
                unlisted = plan.failures.len(),
                bytes = format_bytes(bytes),
                seconds = format!("{:.1}", elapsed.as_secs_f64())
            )
        );
        if args.once || stop.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(schedule.pause()) => {}
        }
    }
    say!("{}", t!("watch.stopped"));
    Ok(if args.once && any_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn record(
    metrics: &Metrics,
    copied: u64,
    failed: u64,
    bytes: u64,
    unlisted: usize,
    elapsed: Duration,
) {
    metrics.cycles.fetch_add(1, Relaxed);
    metrics.images_copied.fetch_add(copied, Relaxed);
    metrics.images_failed.fetch_add(failed, Relaxed);
    metrics.bytes.fetch_add(bytes, Relaxed);
    metrics
        .repositories_failed
        .fetch_add(unlisted as u64, Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    metrics.last_cycle_end_seconds.store(now.as_secs(), Relaxed);
    metrics
        .last_cycle_milliseconds
        .store(elapsed.as_millis() as u64, Relaxed);
}

/// Serves `/healthz` and `/metrics` on `address` for as long as the daemon runs.
async fn serve_metrics(address: &str, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address).await.map_err(|e| {
        RunError(
            t!(
                "serve.bind_failed",
                address = address,
                detail = e.to_string()
            )
            .to_string(),
        )
    })?;
    let bound = listener.local_addr()?;
    say!("{}", t!("watch.listening", url = format!("http://{bound}")));
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(metrics): State<Arc<Metrics>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    metrics.render(),
                )
            }),
        )
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

/// SIGTERM or Ctrl-C: let the image in flight finish, start nothing new, leave after the
/// cycle. A second signal leaves at once.
fn stop_on_signals(stop: CancellationToken) {
    tokio::spawn(async move {
        stop_signal().await;
        alert!("{}", t!("watch.stopping"));
        stop.cancel();
        stop_signal().await;
        std::process::exit(130);
    });
}
