//! The original tool's single-dash command line (`-src=nj -lst=img.lst -dst=gz`), kept so that
//! existing scripts and cron jobs run unchanged next to the new subcommands.
//!
//! Parsing follows Go's `flag` package, which the original used: `-x=v`, `--x=v`, `-x v` and
//! `--x v` all work, a boolean is set by `-watch` or `-watch=false`, and the last of a repeated
//! flag wins. Two deliberate differences: `-inc` may be repeated to give several bases, and a stray
//! positional argument is an error instead of silently ending the flags (Go ignored everything
//! after it, so `-src=a img.lst -dst=b` quietly became a save).

use std::fmt;
use std::path::PathBuf;

use rust_i18n::t;

/// Everything the old-style command line can say, plus the new CLI's global flags mixed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LegacyInvocation {
    /// `-src`: source registry name (or address).
    pub(crate) src: Option<String>,
    /// `-dst`: target registry name, `docker` or `ctr`.
    pub(crate) dst: Option<String>,
    /// `-lst`: image list file; stdin when absent.
    pub(crate) lst: Option<PathBuf>,
    /// `-img`: the `*_meta.yaml` to upload.
    pub(crate) img: Option<PathBuf>,
    /// `-inc`: the bases of an incremental save, in the order given.
    pub(crate) inc: Vec<PathBuf>,
    /// `-out`: output prefix, overriding `outprefix`.
    pub(crate) out: Option<String>,
    pub(crate) watch: bool,
    /// `-h`/`-help`: show usage instead of running.
    pub(crate) help: bool,
    pub(crate) config: Option<PathBuf>,
    pub(crate) lang: Option<String>,
    pub(crate) json: Option<PathBuf>,
    pub(crate) maxconn: Option<usize>,
    pub(crate) retries: Option<u32>,
}

/// What the original would run for these flags (its flag combinations, as its `main` chose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyMode {
    Help,
    Transmit,
    Watch,
    Upload,
    Save {
        incremental: bool,
    },
    /// Print "Invalid args, please refer the help" and the usage.
    Invalid,
}

/// Why the old-style command line could not be parsed; `Display` is in the current language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegacyError {
    UnknownFlag(String),
    MissingValue(String),
    InvalidValue {
        flag: String,
        value: String,
        detail: String,
    },
    UnexpectedArgument(String),
    /// `---x`, `-=x` and the like, which Go rejects as "bad flag syntax".
    BadSyntax(String),
}

impl fmt::Display for LegacyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::UnknownFlag(flag) => t!("legacy.unknown_flag", flag = flag),
            Self::MissingValue(flag) => t!("legacy.missing_value", flag = flag),
            Self::InvalidValue {
                flag,
                value,
                detail,
            } => t!(
                "legacy.invalid_value",
                flag = flag,
                value = value,
                detail = detail
            ),
            Self::UnexpectedArgument(arg) => t!("legacy.unexpected_argument", arg = arg),
            Self::BadSyntax(arg) => t!("legacy.bad_syntax", arg = arg),
        };
        f.write_str(&text)
    }
}

impl std::error::Error for LegacyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Value(ValueFlag),
    Bool(BoolFlag),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueFlag {
    Src,
    Dst,
    Lst,
    Img,
    Inc,
    Out,
    Config,
    Lang,
    Json,
    Maxconn,
    Retries,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoolFlag {
    Watch,
    Help,
}

impl Flag {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "src" => Self::Value(ValueFlag::Src),
            "dst" => Self::Value(ValueFlag::Dst),
            "lst" => Self::Value(ValueFlag::Lst),
            "img" => Self::Value(ValueFlag::Img),
            "inc" => Self::Value(ValueFlag::Inc),
            "out" => Self::Value(ValueFlag::Out),
            "config" => Self::Value(ValueFlag::Config),
            "lang" => Self::Value(ValueFlag::Lang),
            "json" => Self::Value(ValueFlag::Json),
            "maxconn" => Self::Value(ValueFlag::Maxconn),
            "retries" => Self::Value(ValueFlag::Retries),
            "watch" => Self::Bool(BoolFlag::Watch),
            "h" | "help" => Self::Bool(BoolFlag::Help),
            _ => return None,
        })
    }

    /// Flags that only the old command line has; seeing one before any subcommand means legacy.
    fn is_legacy_only(self) -> bool {
        matches!(
            self,
            Self::Bool(BoolFlag::Watch)
                | Self::Value(
                    ValueFlag::Src
                        | ValueFlag::Dst
                        | ValueFlag::Lst
                        | ValueFlag::Img
                        | ValueFlag::Inc
                        | ValueFlag::Out
                )
        )
    }
}

/// A flag-shaped argument split into its name and the value after `=`, if any.
struct FlagArg<'a> {
    name: &'a str,
    inline_value: Option<&'a str>,
}

/// `None` for positional arguments (`x`, `-`) and the `--` terminator.
fn split_flag(arg: &str) -> Option<Result<FlagArg<'_>, LegacyError>> {
    if arg == "--" || arg == "-" || !arg.starts_with('-') {
        return None;
    }
    let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
    if body.is_empty() || body.starts_with(['-', '=']) {
        return Some(Err(LegacyError::BadSyntax(arg.to_owned())));
    }
    let (name, inline_value) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    };
    Some(Ok(FlagArg { name, inline_value }))
}

/// True when `args` (the arguments after the program name) are the old command line: one of
/// `-src -dst -lst -img -inc -out -watch`, in any of Go's forms, appears before any subcommand.
///
/// Stopping at the first positional argument keeps `save --out PREFIX` a new-style command.
pub(crate) fn is_legacy(args: &[String]) -> bool {
    let mut rest = args.iter().peekable();
    while let Some(arg) = rest.next() {
        let Some(parsed) = split_flag(arg) else {
            return false;
        };
        let Ok(parsed) = parsed else { continue };
        match Flag::from_name(parsed.name) {
            Some(flag) if flag.is_legacy_only() => return true,
            // Skip the flag's value the way `parse` would take it, so `--config save` stays a value.
            Some(Flag::Value(_))
                if parsed.inline_value.is_none()
                    && rest.peek().is_some_and(|next| !is_known_flag(next)) =>
            {
                rest.next();
            }
            _ => {}
        }
    }
    false
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<LegacyInvocation, LegacyError> {
    let mut invocation = LegacyInvocation::default();
    let mut index = 0;
    while let Some(arg) = args.get(index) {
        index += 1;
        let Some(parsed) = split_flag(arg) else {
            let stray = if arg == "--" {
                args.get(index)
            } else {
                Some(arg)
            };
            return match stray {
                Some(stray) => Err(LegacyError::UnexpectedArgument(stray.clone())),
                None => Ok(invocation),
            };
        };
        let FlagArg { name, inline_value } = parsed?;
        let shown = || arg.split('=').next().unwrap_or(arg).to_owned();
        let flag = match Flag::from_name(name) {
            Some(Flag::Bool(flag)) => {
                let on = match inline_value {
                    Some(value) => {
                        parse_go_bool(value).ok_or_else(|| LegacyError::InvalidValue {
                            flag: shown(),
                            value: value.to_owned(),
                            detail: "expected true or false".to_owned(),
                        })?
                    }
                    None => true,
                };
                match flag {
                    BoolFlag::Watch => invocation.watch = on,
                    BoolFlag::Help => invocation.help = on,
                }
                continue;
            }
            Some(Flag::Value(flag)) => flag,
            None => return Err(LegacyError::UnknownFlag(shown())),
        };
        let value = match inline_value {
            Some(value) => value.to_owned(),
            // Go takes the next argument whatever it looks like; refusing one of our own flags
            // turns `-src -dst=gz` into a clear error instead of a source named "-dst=gz".
            None => match args.get(index) {
                Some(next) if !is_known_flag(next) => {
                    index += 1;
                    next.clone()
                }
                _ => return Err(LegacyError::MissingValue(shown())),
            },
        };
        apply(&mut invocation, flag, value, shown)?;
    }
    Ok(invocation)
}

fn is_known_flag(arg: &str) -> bool {
    matches!(split_flag(arg), Some(Ok(parsed)) if Flag::from_name(parsed.name).is_some())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn apply(
    invocation: &mut LegacyInvocation,
    flag: ValueFlag,
    value: String,
    shown: impl Fn() -> String,
) -> Result<(), LegacyError> {
    // The original tested `*flag != ""`, so `-src=` is the same as no `-src`.
    let given = (!value.is_empty()).then(|| value.clone());
    let number_error = |err: std::num::ParseIntError| LegacyError::InvalidValue {
        flag: shown(),
        value: value.clone(),
        detail: err.to_string(),
    };
    match flag {
        ValueFlag::Src => invocation.src = given,
        ValueFlag::Dst => invocation.dst = given,
        ValueFlag::Lst => invocation.lst = given.map(PathBuf::from),
        ValueFlag::Img => invocation.img = given.map(PathBuf::from),
        ValueFlag::Inc => invocation.inc.extend(given.map(PathBuf::from)),
        ValueFlag::Out => invocation.out = given,
        ValueFlag::Config => invocation.config = given.map(PathBuf::from),
        ValueFlag::Lang => invocation.lang = given,
        ValueFlag::Json => invocation.json = given.map(PathBuf::from),
        ValueFlag::Maxconn => invocation.maxconn = Some(value.parse().map_err(number_error)?),
        ValueFlag::Retries => invocation.retries = Some(value.parse().map_err(number_error)?),
    }
    Ok(())
}

/// The original's dispatch, first match wins: `-src`+`-dst` transmit (or watch with `-watch`),
/// `-img`+`-dst` upload, `-src` alone save (incremental with `-inc`), anything else invalid.
pub(crate) fn mode(invocation: &LegacyInvocation) -> LegacyMode {
    let has_src = invocation.src.is_some();
    let has_dst = invocation.dst.is_some();
    if invocation.help {
        LegacyMode::Help
    } else if has_src && has_dst {
        if invocation.watch {
            LegacyMode::Watch
        } else {
            LegacyMode::Transmit
        }
    } else if invocation.img.is_some() && has_dst {
        LegacyMode::Upload
    } else if has_src {
        LegacyMode::Save {
            incremental: !invocation.inc.is_empty(),
        }
    } else {
        LegacyMode::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn parsed(text: &str) -> LegacyInvocation {
        parse(&args(text)).unwrap_or_else(|err| panic!("{text}: {err:?}"))
    }

    #[test]
    fn all_go_value_forms_are_accepted() {
        for text in [
            "-src=nj -dst=gz",
            "--src=nj --dst=gz",
            "-src nj -dst gz",
            "--src nj --dst gz",
            "-src=nj --dst gz",
        ] {
            let invocation = parsed(text);
            assert_eq!(invocation.src.as_deref(), Some("nj"), "{text}");
            assert_eq!(invocation.dst.as_deref(), Some("gz"), "{text}");
        }
    }

    #[test]
    fn every_legacy_flag_is_parsed() {
        let invocation = parsed(
            "-src=nj -dst=gz -lst=img.lst -img=m_meta.yaml -inc=a_meta.yaml -out=out/img -watch",
        );
        assert_eq!(
            invocation,
            LegacyInvocation {
                src: Some("nj".into()),
                dst: Some("gz".into()),
                lst: Some("img.lst".into()),
                img: Some("m_meta.yaml".into()),
                inc: vec!["a_meta.yaml".into()],
                out: Some("out/img".into()),
                watch: true,
                ..LegacyInvocation::default()
            }
        );
    }

    #[test]
    fn inc_is_repeatable_in_order() {
        let invocation = parsed("-src=nj -inc=a.yaml --inc b.yaml -inc c.yaml");
        assert_eq!(
            invocation.inc,
            vec![
                PathBuf::from("a.yaml"),
                PathBuf::from("b.yaml"),
                PathBuf::from("c.yaml")
            ]
        );
    }

    #[test]
    fn repeated_single_flag_keeps_the_last_like_go() {
        assert_eq!(parsed("-src=a -src=b").src.as_deref(), Some("b"));
    }

    #[test]
    fn watch_boolean_forms() {
        assert!(parsed("-watch").watch);
        assert!(parsed("--watch").watch);
        assert!(parsed("-watch=true").watch);
        assert!(parsed("-watch=T").watch);
        assert!(!parsed("-watch=false").watch);
        assert!(!parsed("--watch=0").watch);
        assert!(matches!(
            parse(&args("-watch=yes")),
            Err(LegacyError::InvalidValue { flag, value, .. }) if flag == "-watch" && value == "yes"
        ));
    }

    #[test]
    fn a_boolean_does_not_take_the_next_argument() {
        assert_eq!(
            parse(&args("-watch true")),
            Err(LegacyError::UnexpectedArgument("true".into()))
        );
    }

    #[test]
    fn global_flags_mix_in() {
        let invocation = parsed(
            "--config other.yaml -src=nj --lang=zh_CN -dst gz --json report.json --maxconn 3 -retries=4",
        );
        assert_eq!(invocation.config, Some(PathBuf::from("other.yaml")));
        assert_eq!(invocation.lang.as_deref(), Some("zh_CN"));
        assert_eq!(invocation.json, Some(PathBuf::from("report.json")));
        assert_eq!(invocation.maxconn, Some(3));
        assert_eq!(invocation.retries, Some(4));
        assert_eq!(invocation.src.as_deref(), Some("nj"));
        assert_eq!(invocation.dst.as_deref(), Some("gz"));
    }

    #[test]
    fn bad_numbers_name_the_flag() {
        let err = parse(&args("-src=a --maxconn=many")).unwrap_err();
        assert!(
            matches!(&err, LegacyError::InvalidValue { flag, value, .. } if flag == "--maxconn" && value == "many"),
            "{err:?}"
        );
        assert!(matches!(
            parse(&args("-src=a -retries -1")),
            Err(LegacyError::InvalidValue { .. })
        ));
    }

    #[test]
    fn unknown_flags_are_named() {
        assert_eq!(
            parse(&args("-src=nj -format=oci")),
            Err(LegacyError::UnknownFlag("-format".into()))
        );
        assert_eq!(
            parse(&args("--opt k=v")),
            Err(LegacyError::UnknownFlag("--opt".into()))
        );
        assert_eq!(
            parse(&args("-SRC=nj")),
            Err(LegacyError::UnknownFlag("-SRC".into()))
        );
        let message = LegacyError::UnknownFlag("-format".into()).to_string();
        assert!(message.contains("-format"), "{message}");
    }

    #[test]
    fn missing_values_are_reported() {
        assert_eq!(
            parse(&args("-dst=gz -src")),
            Err(LegacyError::MissingValue("-src".into()))
        );
        assert_eq!(
            parse(&args("-src -dst=gz")),
            Err(LegacyError::MissingValue("-src".into()))
        );
    }

    #[test]
    fn a_dash_value_is_still_a_value() {
        assert_eq!(parsed("-src=nj -lst -").lst, Some(PathBuf::from("-")));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let invocation = parsed("-src= -dst=gz -inc=");
        assert_eq!(invocation.src, None);
        assert!(invocation.inc.is_empty());
        assert_eq!(mode(&invocation), LegacyMode::Invalid);
    }

    #[test]
    fn positional_arguments_and_bad_syntax_are_errors() {
        assert_eq!(
            parse(&args("-src=a img.lst -dst=b")),
            Err(LegacyError::UnexpectedArgument("img.lst".into()))
        );
        assert_eq!(
            parse(&args("-src=a -- -dst=b")),
            Err(LegacyError::UnexpectedArgument("-dst=b".into()))
        );
        assert_eq!(parsed("-src=a --").src.as_deref(), Some("a"));
        assert_eq!(
            parse(&args("---src=a")),
            Err(LegacyError::BadSyntax("---src=a".into()))
        );
        assert_eq!(
            parse(&args("-=a")),
            Err(LegacyError::BadSyntax("-=a".into()))
        );
    }

    #[test]
    fn values_may_contain_equals_signs() {
        assert_eq!(parsed("-out=a=b").out.as_deref(), Some("a=b"));
    }

    #[test]
    fn detection() {
        for legacy in [
            "-src=nj -lst=img.lst",
            "--src nj",
            "-dst=gz -img=x_meta.yaml",
            "-watch",
            "--config cfg.yaml -src=nj",
            "--lang=zh -out x",
            "-lst=img.lst",
            "-inc a",
            "--config -src",
        ] {
            assert!(is_legacy(&args(legacy)), "{legacy}");
        }
        for modern in [
            "",
            "copy --from a --to b",
            "save --from nj --out prefix",
            "--config cfg.yaml save --out x",
            "--help",
            "-h",
            "watch --from a --to b",
            "-- -src=a",
        ] {
            assert!(!is_legacy(&args(modern)), "{modern}");
        }
    }

    fn mode_of(text: &str) -> LegacyMode {
        mode(&parsed(text))
    }

    #[test]
    fn dispatch_first_match_wins() {
        assert_eq!(mode_of("-src=nj -dst=gz -lst=l"), LegacyMode::Transmit);
        assert_eq!(mode_of("-src=nj -dst=gz -lst=l -watch"), LegacyMode::Watch);
        assert_eq!(mode_of("-src=nj -dst=gz -img=m.yaml"), LegacyMode::Transmit);
        assert_eq!(mode_of("-dst=gz -img=m.yaml"), LegacyMode::Upload);
        assert_eq!(mode_of("-dst=gz -img=m.yaml -lst=l"), LegacyMode::Upload);
        assert_eq!(
            mode_of("-src=nj -lst=l"),
            LegacyMode::Save { incremental: false }
        );
        assert_eq!(
            mode_of("-src=nj -lst=l -inc=a.yaml"),
            LegacyMode::Save { incremental: true }
        );
        assert_eq!(
            mode_of("-src=nj -watch"),
            LegacyMode::Save { incremental: false }
        );
        assert_eq!(
            mode_of("-src=nj -img=m.yaml"),
            LegacyMode::Save { incremental: false }
        );
        assert_eq!(mode_of("-dst=gz"), LegacyMode::Invalid);
        assert_eq!(mode_of("-img=m.yaml"), LegacyMode::Invalid);
        assert_eq!(mode_of("-watch"), LegacyMode::Invalid);
        assert_eq!(mode_of(""), LegacyMode::Invalid);
        assert_eq!(mode_of("-src=nj -dst=gz -h"), LegacyMode::Help);
        assert_eq!(
            mode_of("-help -help=false -src=nj"),
            LegacyMode::Save { incremental: false }
        );
    }
}
