//! The one place the program writes for people. The libraries never print; the commands say
//! what happens through these macros, so `--quiet` is one switch and the print lints are
//! allowed here alone.
//!
//! - `say!`: what a command tells as it goes and at its end (images copied, files written,
//!   totals, findings), on standard output; silent under `--quiet`.
//! - `note!`: the status line where standard error is no terminal; silent under `--quiet`.
//! - `alert!`: errors and warnings, on standard error, always.
//! - `problem!`: a failed or invalid image in a job's closing summary: with the rest of the
//!   summary on standard output, or alone on standard error under `--quiet`.
//! - `out!`: what was asked for in so many words (help, the web UI's event lines), always.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: only errors and warnings are written.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Relaxed);
}

pub(crate) fn is_quiet() -> bool {
    QUIET.load(Relaxed)
}

#[doc(hidden)]
pub(crate) fn say_line(text: impl Display) {
    if !is_quiet() {
        println!("{text}");
    }
}

#[doc(hidden)]
pub(crate) fn note_line(text: impl Display) {
    if !is_quiet() {
        eprintln!("{text}");
    }
}

#[doc(hidden)]
pub(crate) fn alert_line(text: impl Display) {
    eprintln!("{text}");
}

/// Standard error, always, as it is (help shown after a usage error ends in its own newline).
pub(crate) fn alert_text(text: impl Display) {
    eprint!("{text}");
}

#[doc(hidden)]
pub(crate) fn problem_line(text: impl Display) {
    if is_quiet() {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

#[doc(hidden)]
pub(crate) fn out_line(text: impl Display) {
    println!("{text}");
}

/// Standard output, unless `--quiet`.
macro_rules! say {
    ($($argument:tt)*) => { $crate::printer::say_line(format_args!($($argument)*)) };
}

/// Standard error, unless `--quiet`.
macro_rules! note {
    ($($argument:tt)*) => { $crate::printer::note_line(format_args!($($argument)*)) };
}

/// Standard error, always: errors and warnings.
macro_rules! alert {
    ($($argument:tt)*) => { $crate::printer::alert_line(format_args!($($argument)*)) };
}

/// A problem in a summary: standard output, or standard error under `--quiet`.
macro_rules! problem {
    ($($argument:tt)*) => { $crate::printer::problem_line(format_args!($($argument)*)) };
}

/// Standard output, always, as one line.
macro_rules! out {
    ($($argument:tt)*) => { $crate::printer::out_line(format_args!($($argument)*)) };
}

pub(crate) use {alert, note, out, problem, say};
