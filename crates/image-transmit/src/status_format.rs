//! Text of the once-a-second status line, kept in the original's shape so users and their log
//! scrapers recognise it, with the original's bugs fixed: petabytes were labelled `EB`, a run
//! shorter than a second showed an empty time, and the down/up markers were swapped in places.
//!
//! Pure formatting only: the counters come from engine events, and drawing is the caller's job.

use std::time::Duration;

use rust_i18n::t;

use crate::i18n;

const BYTE_UNITS: [&str; 7] = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];

/// Formats a byte count as `%.1f` with base 1024, e.g. `0.0B`, `1.5KB`, `120.0MB`.
pub(crate) fn format_bytes(bytes: u64) -> String {
    // Precision lost above 2^53 bytes is far below the one decimal shown.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < BYTE_UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    // 1023.96 KB would print as "1024.0KB"; promote it so the number always stays below 1024.
    if (value * 10.0).round() >= 10240.0 && unit < BYTE_UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", BYTE_UNITS[unit])
}

/// Formats whole elapsed seconds as `1D2H3M4S` (zh: `1天2时3分4秒`), leaving out zero parts.
///
/// `locale` is a catalog name such as [`i18n::ENGLISH`]; a zero duration prints `0S`, not the
/// original's empty string.
pub(crate) fn format_elapsed(elapsed: Duration, locale: &str) -> String {
    let total = elapsed.as_secs();
    let parts = [
        (total / 86_400, t!("time.day", locale = locale)),
        (total % 86_400 / 3_600, t!("time.hour", locale = locale)),
        (total % 3_600 / 60, t!("time.minute", locale = locale)),
        (total % 60, t!("time.second", locale = locale)),
    ];
    let text: String = parts
        .iter()
        .filter(|(amount, _)| *amount > 0)
        .map(|(amount, unit)| format!("{amount}{unit}"))
        .collect();
    if text.is_empty() {
        format!("0{}", parts[3].1)
    } else {
        text
    }
}

/// Counters shown on the status line; sizes in bytes, speeds in bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusCounts {
    pub(crate) invalid: u64,
    pub(crate) total: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) doing: u64,
    pub(crate) down_bytes: u64,
    pub(crate) up_bytes: u64,
    pub(crate) down_speed: u64,
    pub(crate) up_speed: u64,
    pub(crate) elapsed: Duration,
}

/// The status line in the current locale.
pub(crate) fn format_status(counts: &StatusCounts) -> String {
    format_status_in(counts, i18n::current_language())
}

/// The status line in `locale`, e.g.
/// `Invalid:1 All:8 OK:5 Err:0 Doing:2 Speed:↓12.0MB/s ↑12.0MB/s Total:↓120.0MB ↑120.0MB Time:1M5S`.
///
/// The arrows are the same in every language: they read unambiguously without translation,
/// unlike the original's `v`/`^` and `下`/`上`.
pub(crate) fn format_status_in(counts: &StatusCounts, locale: &str) -> String {
    format!(
        "{}:{} {}:{} {}:{} {}:{} {}:{} {}:↓{}/s ↑{}/s {}:↓{} ↑{} {}:{}",
        t!("status.invalid", locale = locale),
        counts.invalid,
        t!("status.total", locale = locale),
        counts.total,
        t!("status.succeeded", locale = locale),
        counts.succeeded,
        t!("status.failed", locale = locale),
        counts.failed,
        t!("status.doing", locale = locale),
        counts.doing,
        t!("status.speed", locale = locale),
        format_bytes(counts.down_speed),
        format_bytes(counts.up_speed),
        t!("status.transferred", locale = locale),
        format_bytes(counts.down_bytes),
        format_bytes(counts.up_bytes),
        t!("status.elapsed", locale = locale),
        format_elapsed(counts.elapsed, locale),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{CHINESE, ENGLISH, LOCALE_LOCK};

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn bytes_use_base_1024_with_one_decimal() {
        assert_eq!(format_bytes(0), "0.0B");
        assert_eq!(format_bytes(1), "1.0B");
        assert_eq!(format_bytes(1023), "1023.0B");
        assert_eq!(format_bytes(1024), "1.0KB");
        assert_eq!(format_bytes(1536), "1.5KB");
        assert_eq!(format_bytes(12 * MIB), "12.0MB");
        assert_eq!(format_bytes(3 * 1024 * MIB), "3.0GB");
        assert_eq!(format_bytes(1024_u64.pow(4)), "1.0TB");
    }

    #[test]
    fn petabytes_are_labelled_pb_and_exabytes_eb() {
        assert_eq!(format_bytes(1024_u64.pow(5)), "1.0PB");
        assert_eq!(format_bytes(5 * 1024_u64.pow(5) / 2), "2.5PB");
        assert_eq!(format_bytes(1024_u64.pow(6)), "1.0EB");
        assert_eq!(format_bytes(u64::MAX), "16.0EB");
    }

    #[test]
    fn values_that_round_to_1024_move_to_the_next_unit() {
        assert_eq!(format_bytes(1024 * 1024 - 1), "1.0MB");
        assert_eq!(format_bytes(1024 * 1024 - 60), "1023.9KB");
    }

    #[test]
    fn elapsed_omits_zero_parts() {
        let secs = Duration::from_secs;
        assert_eq!(format_elapsed(secs(65), ENGLISH), "1M5S");
        assert_eq!(format_elapsed(secs(60), ENGLISH), "1M");
        assert_eq!(format_elapsed(secs(3_600), ENGLISH), "1H");
        assert_eq!(format_elapsed(secs(90_061), ENGLISH), "1D1H1M1S");
        assert_eq!(format_elapsed(secs(86_400 + 5), ENGLISH), "1D5S");
        assert_eq!(
            format_elapsed(Duration::from_millis(59_999), ENGLISH),
            "59S"
        );
    }

    #[test]
    fn zero_elapsed_prints_zero_seconds() {
        assert_eq!(format_elapsed(Duration::ZERO, ENGLISH), "0S");
        assert_eq!(format_elapsed(Duration::from_millis(999), ENGLISH), "0S");
        assert_eq!(format_elapsed(Duration::ZERO, CHINESE), "0秒");
    }

    #[test]
    fn elapsed_in_chinese() {
        assert_eq!(format_elapsed(Duration::from_secs(65), CHINESE), "1分5秒");
        assert_eq!(
            format_elapsed(Duration::from_secs(90_061), CHINESE),
            "1天1时1分1秒"
        );
    }

    fn sample() -> StatusCounts {
        StatusCounts {
            invalid: 1,
            total: 8,
            succeeded: 5,
            failed: 0,
            doing: 2,
            down_bytes: 120 * MIB,
            up_bytes: 120 * MIB,
            down_speed: 12 * MIB,
            up_speed: 12 * MIB,
            elapsed: Duration::from_secs(65),
        }
    }

    #[test]
    fn english_status_line() {
        assert_eq!(
            format_status_in(&sample(), ENGLISH),
            "Invalid:1 All:8 OK:5 Err:0 Doing:2 Speed:↓12.0MB/s ↑12.0MB/s \
             Total:↓120.0MB ↑120.0MB Time:1M5S"
        );
    }

    #[test]
    fn chinese_status_line() {
        assert_eq!(
            format_status_in(&sample(), CHINESE),
            "无效:1 总计:8 成功:5 失败:0 处理中:2 速度:↓12.0MB/s ↑12.0MB/s \
             总量:↓120.0MB ↑120.0MB 耗时:1分5秒"
        );
    }

    #[test]
    fn down_and_up_are_not_swapped() {
        let counts = StatusCounts {
            down_bytes: 2048,
            up_bytes: 1024,
            down_speed: 4096,
            up_speed: 0,
            ..StatusCounts::default()
        };
        let line = format_status_in(&counts, ENGLISH);
        assert!(line.contains("Speed:↓4.0KB/s ↑0.0B/s"), "{line}");
        assert!(line.contains("Total:↓2.0KB ↑1.0KB"), "{line}");
        assert!(line.ends_with("Time:0S"), "{line}");
    }

    #[test]
    fn status_line_follows_the_current_locale() {
        let _guard = LOCALE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rust_i18n::set_locale(CHINESE);
        let chinese = format_status(&sample());
        rust_i18n::set_locale(ENGLISH);
        let english = format_status(&sample());
        assert!(chinese.starts_with("无效:1 "), "{chinese}");
        assert!(english.starts_with("Invalid:1 "), "{english}");
    }
}
