//! What callers and upstream servers send is untrusted: before any of it reaches the
//! store, a log line, a span, a metric label or a page, it passes through here, bounded in
//! length and stripped of what breaks storage and terminals (NUL, control characters), and
//! URLs lose their credentials and query.

use std::borrow::Cow;

/// Longest error text kept (audit rows, last errors, events, upstream failures).
pub const MAX_ERROR_BYTES: usize = 1024;
/// Longest span attribute or span event text kept in a trace.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;
/// Longest name shown for something a caller named but that is not valid (a tool name).
pub const MAX_SHOWN_NAME_BYTES: usize = 64;

/// What marks a text cut short.
const ELLIPSIS: &str = "…";

/// `text` without NUL and other control characters (tabs and newlines become spaces),
/// cut to at most `max` bytes on a character boundary, with `…` when cut. Borrows when
/// nothing changes (the common case costs one scan).
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    let clean = text.len() <= max && !text.chars().any(hidden);
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(max.min(text.len()));
    for c in text.chars() {
        let c = match c {
            '\t' | '\n' | '\r' => ' ',
            c if hidden(c) => continue,
            c => c,
        };
        if out.len() + c.len_utf8() > max {
            // Cut: make room for the mark.
            while out.len() + ELLIPSIS.len() > max {
                if out.pop().is_none() {
                    break;
                }
            }
            if out.len() + ELLIPSIS.len() <= max {
                out.push_str(ELLIPSIS);
            }
            break;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Characters that hide or reorder text on a page or a terminal: control characters,
/// zero-width characters and bidirectional overrides (which can make a name read as
/// another).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// An owned [`bounded`] text.
pub fn bounded_owned(text: &str, max: usize) -> String {
    bounded(text, max).into_owned()
}

/// An error text fit to keep: [`bounded`] to [`MAX_ERROR_BYTES`].
pub fn error_text(text: &str) -> String {
    bounded_owned(text, MAX_ERROR_BYTES)
}

/// A name a caller sent that failed validation, as it may be stored or shown: escaped
/// (control characters and quotes as `\u{..}`/`\"`, so nothing is hidden) and cut to
/// [`MAX_SHOWN_NAME_BYTES`], with the original length when cut.
pub fn escaped_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let piece: String = c.escape_debug().collect();
        if out.len() + piece.len() > MAX_SHOWN_NAME_BYTES {
            out.push_str(ELLIPSIS);
            out.push_str(&format!(" ({} bytes)", raw.len()));
            return out;
        }
        out.push_str(&piece);
    }
    out
}

/// A URL with its user information and query (and fragment) removed: either may hold a
/// secret. Used wherever a URL is shown, stored or logged. `http://u:p@h:1/mcp?t=x#f`
/// becomes `http://…@h:1/mcp?…`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let hidden = if authority.contains('@') { "…@" } else { "" };
    let query = if rest[authority_end..].contains(['?', '#']) {
        "?…"
    } else {
        ""
    };
    let redacted = if scheme.is_empty() {
        format!("{hidden}{host}{path}{query}")
    } else {
        format!("{scheme}://{hidden}{host}{path}{query}")
    };
    bounded_owned(&redacted, 512)
}

/// `text` (an error message from a client library, which tends to quote the URL it was
/// given, or from an instance) with every occurrence of `url` (if not empty) and of any
/// other URL redacted, then [`error_text`]-bounded.
pub fn scrub_url(text: &str, url: &str) -> String {
    let scrubbed = if !url.is_empty() && text.contains(url) {
        Cow::Owned(text.replace(url, &redact_url(url)))
    } else {
        Cow::Borrowed(text)
    };
    // Client libraries also print the URL in its parsed, normalised form (a trailing
    // slash added, the host lower-cased): catch any remaining credentials or query.
    error_text(&scrub_any_url(&scrubbed))
}

/// `text` with every URL in it redacted (see [`redact_url`]), not bounded: for log lines.
pub fn redact_urls_in(text: &str) -> String {
    scrub_any_url(text).into_owned()
}

/// Every `scheme://…` word in `text` with its user information and query removed.
fn scrub_any_url(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: letters right before `://`.
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..scheme_start]);
        let url_end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '<'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&redact_url(&rest[scheme_start..url_end]));
        rest = &rest[url_end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_short_text_is_borrowed() {
        assert!(matches!(bounded("all fine", 64), Cow::Borrowed("all fine")));
    }

    #[test]
    fn nul_and_controls_go_newlines_become_spaces() {
        assert_eq!(bounded("a\0b\u{7}c\nd\te", 64), "abc d e");
    }

    #[test]
    fn zero_width_and_bidi_characters_go() {
        assert_eq!(bounded("adm\u{200b}in\u{202e}txt.exe", 64), "admintxt.exe");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_mark() {
        let text = "é".repeat(100); // 200 bytes
        let cut = bounded(&text, 21);
        assert!(cut.len() <= 21, "{}", cut.len());
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.starts_with("éé"));
        assert_eq!(
            bounded(&"x".repeat(2000), MAX_ERROR_BYTES).len(),
            MAX_ERROR_BYTES
        );
    }

    #[test]
    fn text_that_fits_once_cleaned_is_not_marked() {
        assert_eq!(bounded("ab\0", 2), "ab");
    }

    #[test]
    fn bad_names_are_escaped_and_cut() {
        assert_eq!(escaped_name("a\0b\"c"), "a\\0b\\\"c");
        let long = escaped_name(&"n".repeat(3000));
        assert!(long.len() < 100, "{long}");
        assert!(long.ends_with("(3000 bytes)"), "{long}");
        assert!(!escaped_name("x\u{1b}[2J").contains('\u{1b}'));
    }

    #[test]
    fn urls_lose_credentials_and_query() {
        assert_eq!(
            redact_url("http://user:secret@127.0.0.1:9/mcp?token=abc"),
            "http://…@127.0.0.1:9/mcp?…"
        );
        assert_eq!(redact_url("https://h.example/mcp"), "https://h.example/mcp");
        assert_eq!(redact_url("h:1/x#frag"), "h:1/x?…");
    }

    #[test]
    fn error_texts_lose_the_urls_they_quote() {
        let url = "http://u:pw@10.0.0.1:7/mcp?key=k1";
        let text = format!(
            "error sending request for url ({url}): refused; also http://a:b@c.example/x/?q=2 here"
        );
        let scrubbed = scrub_url(&text, url);
        for secret in ["pw", "k1", "a:b", "q=2"] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.contains("http://…@10.0.0.1:7/mcp?…"), "{scrubbed}");
        assert!(scrubbed.contains("http://…@c.example/x/?…"), "{scrubbed}");
        assert!(scrubbed.ends_with("here"), "{scrubbed}");
    }
}
