//! image-transmit: moves container images between registries, offline bundles and local
//! engines. This crate is the program's glue: it reads cfg.yaml and the command line (new
//! subcommands or the original's single-dash flags), runs the engine, shows progress, and maps
//! the outcome to an exit status: 0 everything done, 1 some image invalid or failed, 2 bad usage
//! or configuration. It is a library (src/main.rs only calls [`main`]) so that the fuzz targets
//! in fuzz/ can reach its parsers through [`fuzzing`].

mod cli;
mod commands;
mod config;
mod config_edit;
mod event_stream;
pub mod fuzzing;
mod help;
mod http_server;
mod i18n;
mod legacy;
mod messages;
mod notify;
mod printer;
mod progress;
mod registry_server;
mod report;
mod status_format;
mod text_file;
mod ui;

use std::process::ExitCode;

use rust_i18n::t;

use crate::cli::{
    Command, CopyArgs, GlobalOptions, LoadArgs, SaveArgs, TransferOptions, UiArgs, UploadArgs,
    WatchArgs,
};
use crate::commands::{RunError, UsageError};
use crate::config::{Config, ConfigError};
use crate::legacy::LegacyMode;
use crate::printer::alert;

rust_i18n::i18n!("locales", fallback = "en");

/// What to run, from either command-line form.
enum Invocation {
    Command(GlobalOptions, Box<Command>),
    /// A legacy call that only prints usage (with an exit status).
    Usage {
        message: Option<String>,
        status: u8,
    },
}

/// The whole program: parses the command line, runs it, and returns its exit status.
pub fn main() -> ExitCode {
    init_tracing();
    // Messages before cfg.yaml is read (bad flags) use the flag or environment language.
    i18n::apply_language(None, None);
    let args = match arguments() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let double_clicked = cfg!(windows) && args.is_empty();
    let code = run(&args);
    if double_clicked && code != ExitCode::SUCCESS {
        wait_before_the_window_closes();
    }
    code
}

/// The command line as text. An argument that is not valid Unicode (a file name in GBK on a
/// Chinese Linux, say) cannot name anything this tool reads: a usage error, not a panic.
fn arguments() -> Result<Vec<String>, ExitCode> {
    std::env::args_os()
        .skip(1)
        .map(|argument| {
            argument.into_string().map_err(|argument| {
                alert!(
                    "{}",
                    t!(
                        "error.argument_not_text",
                        argument = argument.to_string_lossy()
                    )
                );
                ExitCode::from(2)
            })
        })
        .collect()
}

/// A double-clicked program's console window closes when it exits: keep it open until the user
/// has read why it stopped.
fn wait_before_the_window_closes() {
    alert!("{}", t!("app.press_enter"));
    let _ = std::io::stdin().read_line(&mut String::new());
}

fn run(args: &[String]) -> ExitCode {
    let invocation = match parse_invocation(args) {
        Ok(invocation) => invocation,
        Err(code) => return code,
    };
    let (global, command) = match invocation {
        Invocation::Command(global, command) => (global, command),
        Invocation::Usage { message, status } => {
            if let Some(message) = message {
                alert!("{message}");
            }
            alert!("{}", legacy_usage());
            return ExitCode::from(status);
        }
    };
    let config = match load_config(&global) {
        Ok(config) => config,
        Err(error) => {
            let sentence = error.to_string();
            alert!("{sentence}");
            report_failure(&command, &sentence, 2);
            return ExitCode::from(2);
        }
    };
    // One thread keeps memory low and suffices where the network or a registry sets the pace,
    // and a save's second core already hashes its data files. A `save --fast` has no such
    // threads: its one thread reading, verifying and writing every byte is the limit, so it
    // gets two (measured: 0.72 → 0.49 s for the 512 MiB benchmark set, peak RSS 15.4 MiB).
    let runtime = match command.as_ref() {
        Command::Save(args) if args.fast => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            alert!("{error}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        match command.as_ref() {
            Command::Copy(args) => commands::copy::run(args, &config).await,
            Command::Save(args) => commands::save::run(args, &config).await,
            Command::Upload(args) => commands::upload::run(args, &config).await,
            Command::Verify(args) => commands::verify::run(args).await,
            Command::Demo => commands::demo::run().await,
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Load(args) => commands::load::run(args, &config).await,
            Command::Cache(args) => commands::cache::run(args, &config),
            Command::Watch(args) => commands::watch::run(args, &config).await,
            Command::Ui(args) => commands::ui::run(&global, args, &config).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            let sentence = one_line(&error);
            alert!("{sentence}");
            let status = if error.is::<UsageError>() { 2 } else { 1 };
            report_failure(&command, &sentence, status);
            ExitCode::from(status)
        }
    }
}

/// A command given `--json FILE` that fails before writing its report (bad usage, unreachable
/// registry, refused login, damaged bundle) still leaves one, saying why.
fn report_failure(command: &Command, sentence: &str, status: u8) {
    let hidden = |address: &str| config::without_password(address);
    let (path, name, source, target) = match command {
        Command::Copy(args) => {
            let (from, to, _) = commands::copy::sides(args).unwrap_or_default();
            (&args.json, "copy", hidden(&from), hidden(&to))
        }
        Command::Save(args) => (
            &args.json,
            "save",
            hidden(&args.from),
            args.out.clone().unwrap_or_default(),
        ),
        Command::Upload(args) => (
            &args.json,
            "upload",
            args.meta.display().to_string(),
            hidden(&args.to),
        ),
        Command::Load(args) => (
            &args.json,
            "load",
            args.from
                .as_deref()
                .map_or_else(|| args.inputs.join(" "), hidden),
            args.to.name().to_string(),
        ),
        _ => return,
    };
    let Some(path) = path else {
        return;
    };
    if let Err(error) = report::write_failure(path, name, &source, &target, sentence, status) {
        alert!("{}", one_line(&error));
    }
}

/// The error and its causes on one line, each cause once. Usage and run errors are already
/// one finished sentence in the user's language.
fn one_line(error: &anyhow::Error) -> String {
    if error.is::<RunError>() || error.is::<UsageError>() {
        return error.to_string();
    }
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn parse_invocation(args: &[String]) -> Result<Invocation, ExitCode> {
    // Double-clicked on Windows: no arguments and no console to type them in.
    if cfg!(windows) && args.is_empty() {
        return Ok(Invocation::Command(
            GlobalOptions::default(),
            Box::new(Command::Ui(UiArgs::default())),
        ));
    }
    if legacy::is_legacy(args) {
        let invocation = legacy::parse(args).map_err(|error| {
            alert!("{error}");
            alert!("{}", legacy_usage());
            ExitCode::from(2)
        })?;
        if let Some(lang) = &invocation.lang {
            i18n::apply_language(Some(lang), None);
        }
        let global = GlobalOptions {
            config: invocation.config.clone(),
            lang: invocation.lang.clone(),
            verbose: false,
            quiet: false,
        };
        let transfer = TransferOptions {
            maxconn: invocation.maxconn,
            retries: invocation.retries,
            ..TransferOptions::default()
        };
        let json = invocation.json.clone();
        return Ok(match legacy::mode(&invocation) {
            LegacyMode::Transmit if is_local_engine(invocation.dst.as_deref()) => {
                Invocation::Command(
                    global,
                    Box::new(Command::Load(LoadArgs {
                        to: cli::Engine::parse(invocation.dst.as_deref().unwrap_or_default())
                            .unwrap_or_default(),
                        from: invocation.src.clone(),
                        list: invocation.lst.clone(),
                        transfer,
                        json,
                        ..LoadArgs::default()
                    })),
                )
            }
            LegacyMode::Transmit => Invocation::Command(
                global,
                Box::new(Command::Copy(CopyArgs {
                    from: Some(invocation.src.clone().unwrap_or_default()),
                    to: Some(invocation.dst.clone().unwrap_or_default()),
                    list: invocation.lst.clone(),
                    transfer,
                    json,
                    ..CopyArgs::default()
                })),
            ),
            LegacyMode::Help => Invocation::Usage {
                message: None,
                status: 0,
            },
            LegacyMode::Invalid => Invocation::Usage {
                message: Some(t!("legacy.invalid_args").to_string()),
                status: 2,
            },
            LegacyMode::Save { .. } => Invocation::Command(
                global,
                Box::new(Command::Save(SaveArgs {
                    from: invocation.src.clone().unwrap_or_default(),
                    list: invocation.lst.clone(),
                    incremental_from: invocation.inc.clone(),
                    out: invocation.out.clone(),
                    format: cli::BundleFormat::Tar,
                    transfer,
                    json,
                    ..SaveArgs::default()
                })),
            ),
            LegacyMode::Upload if !is_local_engine(invocation.dst.as_deref()) => {
                Invocation::Command(
                    global,
                    Box::new(Command::Upload(UploadArgs {
                        to: invocation.dst.clone().unwrap_or_default(),
                        meta: invocation.img.clone().unwrap_or_default(),
                        list: invocation.lst.clone(),
                        images: Vec::new(),
                        transfer,
                        json,
                        target_tls: Default::default(),
                    })),
                )
            }
            LegacyMode::Upload => Invocation::Command(
                global,
                Box::new(Command::Load(LoadArgs {
                    to: cli::Engine::parse(invocation.dst.as_deref().unwrap_or_default())
                        .unwrap_or_default(),
                    inputs: invocation
                        .img
                        .iter()
                        .map(|meta| meta.display().to_string())
                        .collect(),
                    list: invocation.lst.clone(),
                    transfer,
                    json,
                    ..LoadArgs::default()
                })),
            ),
            LegacyMode::Watch => Invocation::Command(
                global,
                Box::new(Command::Watch(WatchArgs {
                    from: invocation.src.clone().unwrap_or_default(),
                    to: invocation.dst.clone().unwrap_or_default(),
                    list: invocation.lst.clone().unwrap_or_default(),
                    transfer,
                    ..WatchArgs::default()
                })),
            ),
        });
    }
    let cli = help::parse(args)?;
    messages::set_verbose(cli.global.verbose);
    printer::set_quiet(cli.global.quiet);
    if let Some(lang) = &cli.global.lang {
        i18n::apply_language(Some(lang), None);
    }
    Ok(Invocation::Command(cli.global, Box::new(cli.command)))
}

/// `-dst=docker` and `-dst=ctr` name the local engines, not registries.
fn is_local_engine(target: Option<&str>) -> bool {
    matches!(target, Some("docker" | "ctr"))
}

/// Reads cfg.yaml if there is one (commands given registry addresses need none), warns about
/// unknown keys, and applies its language.
fn load_config(global: &GlobalOptions) -> Result<Config, ConfigError> {
    let config = match Config::locate(global.config.as_deref())? {
        Some(path) => {
            let loaded = Config::load(&path)?;
            i18n::apply_language(global.lang.as_deref(), loaded.config.lang.as_deref());
            for key in &loaded.unknown_keys {
                alert!("{}", t!("warning.unknown_config_key", key = key));
            }
            loaded.config
        }
        None => Config::default(),
    };
    let mut config = config;
    ui::registries::add_session_registries(&mut config);
    Ok(config)
}

fn legacy_usage() -> String {
    let program = help::program_name();
    format!(
        "{}\n{program} [OPTIONS]\n{}",
        t!("app.title"),
        t!("legacy.examples", program = program)
    )
}

/// Diagnostics go to stderr, filtered by `RUST_LOG` (warnings by default). The squashfs reader
/// (backhand) logs every problem it then returns as an error, which is explained once anyway.
/// `RUST_LOG` takes levels and targets (`debug`, `warn,registry=trace`): a target filter, not
/// tracing's `EnvFilter`, whose span and field matching would bring a regex compiler into the
/// binary for a feature nobody uses here (measured: docs/benchmarks.md, release sizes).
fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(LevelFilter::WARN)
                .with_target("backhand", LevelFilter::OFF)
        });
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .without_time(),
        )
        .with(filter)
        .try_init();
}
