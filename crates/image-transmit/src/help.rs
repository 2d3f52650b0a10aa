//! The new command line's help and usage errors, in the user's language.
//!
//! clap writes its help and errors in English, with headings ("Usage:", "Options:") and
//! sentences ("unexpected argument … found") of its own. Here the command tree from `cli.rs` is
//! given texts from the catalogs (`cli.*` keys) and a help template whose headings are
//! translated too; clap's errors are read for their kind and context and said again as one
//! sentence from the catalogs (`cli.error.*`), followed by the usage line and where to find help.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};
use rust_i18n::t;

use crate::cli::Cli;
use crate::config::Config;
use crate::i18n;
use crate::printer::alert;

/// The catalog prefix of the top-level command; a subcommand's is `cli.<name>`.
const ROOT: &str = "cli";

/// Where the options every command takes, and help, are listed: after a command's own.
const LAST: usize = 1000;

/// Parses the new-style command line (without the program name). Help and version requests
/// are printed here and end in `Err(0)`; usage errors are printed and end in `Err(2)`.
pub(crate) fn parse(args: &[String]) -> Result<Cli, ExitCode> {
    apply_language(args);
    let mut command = localized_command();
    let args = help_word_as_flag(args);
    let program = std::iter::once(program_name());
    let matches = command.try_get_matches_from_mut(program.chain(args.iter().cloned()));
    let error = match matches.and_then(|matches| Cli::from_arg_matches(&matches)) {
        Ok(cli) => return Ok(cli),
        Err(error) => error,
    };
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            Err(ExitCode::SUCCESS)
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            crate::printer::alert_text(help_of(&mut command, &args));
            Err(ExitCode::from(2))
        }
        _ => {
            alert!("{}", explain(&error));
            let path = subcommand_path(&command, &args);
            if let Some(usage) = usage_of(&mut command, &path) {
                alert!("{}", usage);
            }
            let mut help = vec![program_name()];
            help.extend(path);
            help.push("--help".to_string());
            alert!("{}", t!("cli.error.more", command = help.join(" ")));
            Err(ExitCode::from(2))
        }
    }
}

/// `image-transmit help copy` is how git and cargo users ask; it means `copy --help`.
fn help_word_as_flag(args: &[String]) -> Vec<String> {
    let mut at = 0;
    // The options before a command are --config and --lang, each with a value unless `=` joins it.
    while let Some(arg) = args.get(at)
        && arg.starts_with('-')
    {
        at += if arg.contains('=') { 1 } else { 2 };
    }
    let mut args = args.to_vec();
    if args.get(at).is_some_and(|arg| arg == "help") {
        args.remove(at);
        args.push("--help".to_string());
    }
    args
}

/// This program's file name as the user started it (`image-transmit.exe` on Windows), for
/// examples they can copy.
pub(crate) fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|path| {
            std::path::Path::new(&path)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "image-transmit".to_string())
}

/// Help and usage errors come before cfg.yaml is read for the job, but speak the language the
/// job would: `--lang`, else cfg.yaml's `lang` (from `--config` or where it is found), else the
/// environment. A cfg.yaml that cannot be read is left for the job to report.
fn apply_language(args: &[String]) {
    let value_of = |name: &str| {
        let flag = format!("--{name}");
        let inline = format!("--{name}=");
        args.iter()
            .enumerate()
            .find_map(|(at, arg)| match arg.strip_prefix(&inline) {
                Some(value) => Some(value.to_string()),
                None if *arg == flag => args.get(at + 1).cloned(),
                None => None,
            })
    };
    if let Some(lang) = value_of("lang") {
        i18n::apply_language(Some(&lang), None);
        return;
    }
    let config = value_of("config").map(PathBuf::from);
    let cfg_lang = Config::locate(config.as_deref())
        .ok()
        .flatten()
        .and_then(|path| Config::load(&path).ok())
        .and_then(|loaded| loaded.config.lang);
    i18n::apply_language(None, cfg_lang.as_deref());
}

/// The command tree with every text from the catalogs in the current language.
pub(crate) fn localized_command() -> Command {
    let command = Cli::command()
        .bin_name(program_name())
        .disable_version_flag(true);
    // The options every command takes come after a command's own, in its help.
    let global: Vec<String> = command
        .get_arguments()
        .map(|argument| argument.get_id().to_string())
        .collect();
    let command = global.iter().fold(command, |command, id| {
        command.mut_arg(id, |argument| argument.display_order(LAST))
    });
    let command = command.arg(
        Arg::new("version")
            .short('V')
            .long("version")
            .action(ArgAction::Version)
            .display_order(LAST)
            .help(t!("cli.version").to_string()),
    );
    localize(command, ROOT)
}

/// Gives `command`, its arguments and its subcommands their texts, `key` being the command's
/// catalog prefix.
fn localize(command: Command, key: &str) -> Command {
    let mut command = command
        .about(t!(format!("{key}.about")).to_string())
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .display_order(LAST + 1)
                .help(t!("cli.help").to_string()),
        );
    let arguments: Vec<String> = command
        .get_arguments()
        .map(|argument| argument.get_id().to_string())
        .filter(|id| id != "help" && id != "version")
        .collect();
    for id in arguments {
        let text = t!(argument_key(key, &id)).to_string();
        command = command.mut_arg(&id, |argument| {
            // clap's "[default: …]" is English; the catalog text says the default itself.
            let has_default = !argument.get_default_values().is_empty();
            // So is "[possible values: …]"; the texts name the values themselves.
            let takes_value = argument.get_action().takes_values();
            argument
                .help(text)
                .hide_default_value(has_default)
                .hide_possible_values(takes_value)
        });
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|subcommand| subcommand.get_name().to_string())
        .collect();
    for name in &subcommands {
        let sub_key = format!("{key}.{name}");
        command = command.mut_subcommand(name, |subcommand| localize(subcommand, &sub_key));
    }
    let template = template(&command, key);
    command.help_template(template)
}

/// The catalog key of an argument's help: its own under the command, or the shared text of an
/// option several commands take (`cli.option.<id>`).
pub(crate) fn argument_key(command_key: &str, id: &str) -> String {
    let own = format!("{command_key}.{id}");
    if crate::_rust_i18n_try_translate(crate::i18n::ENGLISH, &own).is_some() {
        own
    } else {
        format!("{ROOT}.option.{id}")
    }
}

/// The help layout with translated headings; the top level shows its examples first, since
/// most people come to the help for them.
fn template(command: &Command, key: &str) -> String {
    let header = command.get_styles().get_header();
    let heading = |name: &str| {
        format!(
            "{}{}{}",
            header.render(),
            t!(format!("cli.heading.{name}")),
            header.render_reset()
        )
    };
    let mut template = String::from("{about-with-newline}\n");
    if key == ROOT {
        template.push_str(&format!(
            "{}\n{}\n\n",
            heading("examples"),
            indented(&t!("cli.examples", program = program_name()))
        ));
    }
    let usage = usage_heading();
    let gap = &usage[usage.trim_end().len()..];
    template.push_str(&format!("{}{gap}{{usage}}\n", heading("usage")));
    if command.get_subcommands().next().is_some() {
        template.push_str(&format!("\n{}\n{{subcommands}}\n", heading("commands")));
    }
    if command
        .get_positionals()
        .any(|argument| !argument.is_hide_set())
    {
        template.push_str(&format!("\n{}\n{{positionals}}\n", heading("arguments")));
    }
    template.push_str(&format!("\n{}\n{{options}}\n", heading("options")));
    if key == ROOT {
        template.push_str(&format!(
            "\n{}\n",
            t!("cli.legacy_flags", program = program_name())
        ));
    }
    template
}

/// "Usage: " or "用法：", ready for the usage to follow on the same line.
fn usage_heading() -> String {
    let heading = t!("cli.heading.usage");
    if heading.ends_with(':') {
        format!("{heading} ")
    } else {
        heading.to_string()
    }
}

/// `text` set in by two spaces, as clap sets in the lines under a heading.
fn indented(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The subcommands named on the command line, outermost first (`["cache", "ls"]`).
fn subcommand_path(command: &Command, args: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut current = command;
    for arg in args {
        if let Some(sub) = current.find_subcommand(arg) {
            path.push(sub.get_name().to_string());
            current = sub;
        }
    }
    path
}

fn find_mut<'a>(command: &'a mut Command, path: &[String]) -> Option<&'a mut Command> {
    let mut current = command;
    for name in path {
        current = current.find_subcommand_mut(name)?;
    }
    Some(current)
}

/// "Usage: image-transmit copy --from <SRC> …" with the heading translated.
fn usage_of(command: &mut Command, path: &[String]) -> Option<String> {
    command.build();
    let sub = find_mut(command, path)?;
    let usage = sub.render_usage().to_string();
    let usage = usage
        .split_once(':')
        .map_or(usage.as_str(), |(_, rest)| rest);
    Some(format!("{}{}", usage_heading(), usage.trim()))
}

fn help_of(command: &mut Command, args: &[String]) -> String {
    let path = subcommand_path(command, args);
    command.build();
    match find_mut(command, &path) {
        Some(sub) => sub.render_help().to_string(),
        None => command.render_help().to_string(),
    }
}

/// `a, b or c` in the user's language.
fn one_of(choices: &[String]) -> String {
    match choices {
        [] => String::new(),
        [only] => only.clone(),
        [first @ .., last] => t!(
            "cli.one_of",
            first = first.join(&t!("cli.list_separator")),
            last = last
        )
        .to_string(),
    }
}

/// clap's error said as one sentence from the catalogs.
fn explain(error: &clap::Error) -> String {
    let text = |kind: ContextKind| match error.get(kind) {
        Some(ContextValue::String(value)) => Some(value.clone()),
        Some(ContextValue::Strings(values)) => Some(values.join(", ")),
        Some(ContextValue::StyledStr(value)) => Some(value.to_string()),
        Some(ContextValue::StyledStrs(values)) => Some(
            values
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Some(ContextValue::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let argument = text(ContextKind::InvalidArg).unwrap_or_default();
    let sentence = match error.kind() {
        ErrorKind::UnknownArgument => t!("cli.error.unknown_argument", argument = argument),
        ErrorKind::InvalidSubcommand => t!(
            "cli.error.unknown_command",
            command = text(ContextKind::InvalidSubcommand).unwrap_or_default()
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let value = text(ContextKind::InvalidValue).unwrap_or_default();
            let choices = match error.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(choices)) if !choices.is_empty() => Some(choices),
                _ => None,
            };
            if value.is_empty() {
                t!("cli.error.empty_value", argument = argument)
            } else if let Some(choices) = choices {
                t!(
                    "cli.error.invalid_choice",
                    argument = argument,
                    value = value,
                    choices = one_of(choices)
                )
            } else {
                t!(
                    "cli.error.invalid_value",
                    argument = argument,
                    value = value
                )
            }
        }
        ErrorKind::MissingRequiredArgument => {
            t!("cli.error.missing_argument", arguments = argument)
        }
        ErrorKind::ArgumentConflict => t!(
            "cli.error.conflict",
            argument = argument,
            other = text(ContextKind::PriorArg).unwrap_or_default()
        ),
        ErrorKind::NoEquals
        | ErrorKind::TooManyValues
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues => {
            t!("cli.error.value_count", argument = argument)
        }
        _ => t!("cli.error.other"),
    };
    let suggestion = text(ContextKind::SuggestedArg)
        .or_else(|| text(ContextKind::SuggestedSubcommand))
        .or_else(|| text(ContextKind::SuggestedValue));
    match suggestion {
        Some(suggestion) => format!(
            "{sentence}{}",
            t!("cli.error.did_you_mean", suggestion = suggestion)
        ),
        None => sentence.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{CHINESE, ENGLISH, LOCALE_LOCK};

    /// Every command of the tree, with its catalog prefix.
    fn every_command(command: &Command, key: &str, out: &mut Vec<(String, Command)>) {
        out.push((key.to_string(), command.clone()));
        for sub in command.get_subcommands() {
            every_command(sub, &format!("{key}.{}", sub.get_name()), out);
        }
    }

    fn commands_in(language: &str) -> Vec<(String, Command)> {
        rust_i18n::set_locale(language);
        let mut command = localized_command();
        command.build();
        let mut all = Vec::new();
        every_command(&command, ROOT, &mut all);
        all
    }

    #[test]
    fn the_tree_is_valid_in_both_languages() {
        let _guard = LOCALE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for language in [ENGLISH, CHINESE] {
            rust_i18n::set_locale(language);
            localized_command().debug_assert();
        }
    }

    #[test]
    fn every_text_comes_from_the_catalog() {
        let _guard = LOCALE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for (key, command) in commands_in(ENGLISH) {
            let about = format!("{key}.about");
            assert!(
                crate::_rust_i18n_try_translate(ENGLISH, &about).is_some(),
                "{about} is missing from the catalogs"
            );
            for argument in command.get_arguments() {
                let id = argument.get_id().as_str();
                if matches!(id, "help" | "version") || argument.is_global_set() && key != ROOT {
                    continue;
                }
                let text = argument_key(&key, id);
                assert!(
                    crate::_rust_i18n_try_translate(ENGLISH, &text).is_some(),
                    "{key}: no catalog text for --{id} (looked for {key}.{id} and {text})"
                );
            }
        }
    }

    /// Every help screen in Chinese is Chinese: no English heading, no clap sentence, no key
    /// shown instead of a text.
    #[test]
    fn chinese_help_has_no_english_left() {
        let _guard = LOCALE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for (key, mut command) in commands_in(CHINESE) {
            let help = command.render_help().to_string();
            for english in [
                "Usage:",
                "Options:",
                "Arguments:",
                "Commands:",
                "Examples:",
                "[default:",
                "[possible values",
                "Print help",
                "Print version",
                "cli.",
            ] {
                assert!(
                    !help.contains(english),
                    "{key} help shows {english}:\n{help}"
                );
            }
            assert!(help.contains("用法："), "{key}:\n{help}");
            assert!(help.contains("选项："), "{key}:\n{help}");
        }
    }

    #[test]
    fn commands_list_only_the_options_they_use() {
        let _guard = LOCALE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let options = |command: &Command| -> Vec<String> {
            command
                .get_arguments()
                .filter_map(|argument| argument.get_long().map(str::to_string))
                .collect()
        };
        for (key, command) in commands_in(ENGLISH) {
            let options = options(&command);
            let moves_images = ["copy", "save", "upload", "load", "watch"]
                .iter()
                .any(|name| key == format!("{ROOT}.{name}"));
            for transfer in ["maxconn", "retries"] {
                assert_eq!(
                    options.iter().any(|o| o == transfer),
                    moves_images,
                    "{key} and --{transfer}"
                );
            }
            let reports = ["copy", "save", "upload", "load"]
                .iter()
                .any(|name| key == format!("{ROOT}.{name}"));
            assert_eq!(
                options.iter().any(|o| o == "json"),
                reports,
                "{key} and --json"
            );
            for everywhere in ["config", "lang", "help"] {
                assert!(
                    options.iter().any(|o| o == everywhere),
                    "{key} lacks --{everywhere}"
                );
            }
        }
    }

    #[test]
    fn top_level_help_shows_examples_first_and_the_original_flags() {
        let _guard = LOCALE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for (language, examples, usage) in [
            (ENGLISH, "Examples:", "Usage:"),
            (CHINESE, "示例：", "用法："),
        ] {
            rust_i18n::set_locale(language);
            let help = localized_command().render_help().to_string();
            let examples_at = help.find(examples).expect(examples);
            assert!(examples_at < help.find(usage).expect(usage), "{help}");
            for flag in ["-src", "-dst", "-lst", "-img", "-inc", "-out", "-watch"] {
                assert!(
                    help.contains(&format!("{flag} ")),
                    "{flag} missing:\n{help}"
                );
            }
            for command in [
                "copy", "save", "upload", "verify", "load", "watch", "ui", "demo",
            ] {
                assert!(help.contains(&format!(" {command} ")), "{command}:\n{help}");
            }
        }
    }

    #[test]
    fn the_help_word_asks_for_help() {
        let words = |args: &[&str]| {
            help_word_as_flag(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(words(&["help", "copy"]), ["copy", "--help"]);
        assert_eq!(words(&["--lang", "zh", "help"]), ["--lang", "zh", "--help"]);
        assert_eq!(
            words(&["--lang=zh", "help", "save"]),
            ["--lang=zh", "save", "--help"]
        );
        // An image called help is not a request for help.
        assert_eq!(words(&["copy", "help"]), ["copy", "help"]);
    }
}
