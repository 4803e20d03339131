//! Text that came from a coordinator or its API, made safe to show on a
//! terminal and to name a file with. A server is not trusted: a model name
//! such as `../../.bashrc` or one carrying escape sequences must neither
//! write outside the folder asked for nor drive the user's terminal.

use std::borrow::Cow;

use serde_json::Value;

/// `text` with every control character (escape sequences, carriage
/// returns, line breaks, bidirectional overrides) shown as `�`, so it prints
/// as what it is.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if text.chars().any(unsafe_char) {
        Cow::Owned(text.chars().map(|c| if unsafe_char(c) { '\u{fffd}' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A JSON string field, [`printable`], or `?` when it is missing or not a string.
pub(crate) fn text(value: &Value) -> Cow<'_, str> {
    value.as_str().map_or(Cow::Borrowed("?"), printable)
}

/// The longest file name [`file_stem`] makes.
const MAX_STEM: usize = 64;

/// A file name made from `name`: ASCII letters, digits, `-`, `_` and `.`
/// kept, anything else (a slash, a space, a control character) as `_`, no
/// leading dot (no hidden file, no `..`), at most [`MAX_STEM`] characters;
/// `fallback` when nothing is left.
pub(crate) fn file_stem(name: &str, fallback: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(MAX_STEM)
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() || safe.chars().all(|c| c == '_') { fallback.to_owned() } else { safe.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_overrides_do_not_reach_the_terminal() {
        assert_eq!(printable("mnist-cnn"), "mnist-cnn");
        assert!(matches!(printable("mnist-cnn"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}]0;pwned\u{7}b"), "a\u{fffd}]0;pwned\u{fffd}b");
        assert_eq!(printable("line\r\nforged"), "line\u{fffd}\u{fffd}forged");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\u{fffd}txt.exe");
        assert_eq!(text(&Value::from("ok\u{9b}31m")), "ok\u{fffd}31m");
        assert_eq!(text(&Value::from(7)), "?");
        assert_eq!(text(&Value::Null), "?");
    }

    #[test]
    fn server_names_cannot_leave_the_folder_or_hide() {
        assert_eq!(file_stem("mnist-cnn", "model"), "mnist-cnn");
        assert_eq!(file_stem("../../.bashrc", "model"), "_.._.bashrc");
        assert_eq!(file_stem("/etc/passwd", "model"), "_etc_passwd");
        assert_eq!(file_stem("..", "model"), "model");
        assert_eq!(file_stem(".hidden", "model"), "hidden");
        assert_eq!(file_stem("a\u{1b}[2Jb c", "model"), "a__2Jb_c");
        assert_eq!(file_stem("", "model"), "model");
        assert_eq!(file_stem("//", "model"), "model");
        assert_eq!(file_stem("名前", "model"), "model");
        assert_eq!(file_stem(&"x".repeat(500), "model").len(), MAX_STEM);
        for name in ["../../.bashrc", "/etc/passwd", "..", "a/b", "\\..\\x"] {
            let stem = file_stem(name, "model");
            assert!(!stem.contains('/') && !stem.contains('\\') && !stem.starts_with('.'), "{name} -> {stem}");
        }
    }
}
