//! The original's tag ordering for watch lines (`repo:MINTAG` copies every tag ≥ MINTAG): the
//! PHP / Composer `version_compare` rules its Go library implements, kept exactly so that a
//! list that worked with the original picks the same tags here.
//!
//! A version is cut into parts: `_`, `-` and `+` become `.`, and every run of characters that
//! are neither digits nor dots becomes a part of its own. Parts compare in turn: numbers by
//! value, the words `dev < alpha = a < beta = b < RC = rc < # < p = pl` below any number, any
//! other word below those, and a missing part as 0. So `v3.10 > v3.5`, `1.0-rc1 < 1.0`,
//! `C_20210819100000 > C_20210818100000`.

use std::cmp::Ordering;

/// Compares two versions (tags) as the original did.
pub fn compare(left: &str, right: &str) -> Ordering {
    let left = parts(left);
    let right = parts(right);
    for index in 0..left.len().max(right.len()) {
        let (a, b) = (left.get(index), right.get(index));
        if a.is_some() && a == b {
            continue;
        }
        let ordering = rank(a.map_or("", String::as_str)).cmp(&rank(b.map_or("", String::as_str)));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn parts(version: &str) -> Vec<String> {
    if version.is_empty() {
        return vec![String::new()];
    }
    let signs_as_dots = version.replace(['_', '-', '+'], ".");
    // Every run of non-digit, non-dot characters stands between dots of its own.
    let mut spaced = String::new();
    let mut in_word = false;
    for character in signs_as_dots.chars() {
        let word_character = !character.is_ascii_digit() && character != '.';
        if word_character != in_word {
            spaced.push('.');
            in_word = word_character;
        }
        spaced.push(character);
    }
    if in_word {
        spaced.push('.');
    }
    // `.{2,}` → `.`, then split, keeping the empty parts at the ends as the original does.
    let mut collapsed = String::new();
    for character in spaced.chars() {
        if !(character == '.' && collapsed.ends_with('.')) {
            collapsed.push(character);
        }
    }
    collapsed.split('.').map(str::to_string).collect()
}

/// A part's rank. Numbers too large for the original's integers rank as unknown words, as
/// they did there.
fn rank(part: &str) -> i64 {
    if part.is_empty() {
        return 0;
    }
    if let Ok(number) = part.parse::<i64>() {
        return number;
    }
    match part {
        "dev" => -6,
        "alpha" | "a" => -5,
        "beta" | "b" => -4,
        "RC" | "rc" => -3,
        "#" => -2,
        "p" | "pl" => 1,
        _ => -7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_order(lower: &str, higher: &str) {
        assert_eq!(compare(lower, higher), Ordering::Less, "{lower} < {higher}");
        assert_eq!(
            compare(higher, lower),
            Ordering::Greater,
            "{higher} > {lower}"
        );
    }

    #[test]
    fn the_readme_examples() {
        assert_order("v3.5", "v3.10");
        assert_order("C_20210818100000", "C_20210819100000");
    }

    #[test]
    fn composer_rules() {
        assert_order("1.0-dev", "1.0-alpha");
        assert_order("1.0-alpha", "1.0-beta");
        assert_order("1.0-beta2", "1.0-RC1");
        assert_order("1.0-rc1", "1.0");
        assert_order("1.0", "1.0-pl1");
        assert_order("1.0-foo", "1.0-dev");
        assert_order("1.9", "1.10.0");
        assert_eq!(compare("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare("1-0", "1.0"), Ordering::Equal);
        assert_eq!(compare("a", "alpha"), Ordering::Equal);
        assert_eq!(compare("v1.2", "v1.2"), Ordering::Equal);
    }

    #[test]
    fn words_and_empty_tags() {
        // `latest` is an unknown word: below any version number.
        assert_order("latest", "v1");
        assert_order("", "1");
        assert_eq!(compare("", ""), Ordering::Equal);
    }

    #[test]
    fn parts_are_cut_as_the_original_cuts_them() {
        assert_eq!(parts("v3.10"), ["", "v", "3", "10"]);
        assert_eq!(parts("1.0-rc1"), ["1", "0", "rc", "1"]);
        assert_eq!(parts("C_20210819100000"), ["", "C", "20210819100000"]);
    }
}
