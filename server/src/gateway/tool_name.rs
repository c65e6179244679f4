//! Tool names as the gateway accepts them, checked at the edge before anything else looks
//! at a call: at most [`MAX_TOOL_NAME_BYTES`] bytes of ASCII letters, digits, `_`, `.` and
//! `-` (the MCP tool-name rule; `__` separates server and tool). A name that fails is never
//! stored, labelled or logged as sent: only its escaped, shortened form
//! ([`crate::sanitize::escaped_name`]) is.

use std::fmt;

/// Longest tool name accepted, exposed (`<server>__<tool>`) or upstream.
pub const MAX_TOOL_NAME_BYTES: usize = 128;

/// The rule, as refusals state it.
pub const TOOL_NAME_RULE: &str =
    "a tool name is 1 to 128 bytes of ASCII letters, digits, '_', '.' and '-'";

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolNameError {
    /// Empty.
    #[error("{TOOL_NAME_RULE}: the name is empty")]
    Empty,
    /// Longer than the limit.
    #[error("{TOOL_NAME_RULE}: this one has {0} bytes")]
    TooLong(usize),
    /// A character outside the allowed set, at this byte offset.
    #[error("{TOOL_NAME_RULE}: byte {0} is not one of them")]
    BadCharacter(usize),
}

/// A name that passed [`check`]: safe to store, label and log as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolName<'a>(&'a str);

impl<'a> ToolName<'a> {
    /// The name.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for ToolName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Checks `raw` against the rule (without allocating).
pub fn check(raw: &str) -> Result<ToolName<'_>, ToolNameError> {
    if raw.is_empty() {
        return Err(ToolNameError::Empty);
    }
    if raw.len() > MAX_TOOL_NAME_BYTES {
        return Err(ToolNameError::TooLong(raw.len()));
    }
    match raw.bytes().position(|b| !is_allowed(b)) {
        Some(at) => Err(ToolNameError::BadCharacter(at)),
        None => Ok(ToolName(raw)),
    }
}

fn is_allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_names_pass() {
        for name in [
            "search__lookup",
            "db.v2__sql-select",
            "a",
            "notifications__send_email",
        ] {
            assert_eq!(check(name).map(|n| n.as_str()), Ok(name));
        }
        assert_eq!(check(&"x".repeat(128)).map(|n| n.as_str().len()), Ok(128));
    }

    #[test]
    fn hostile_names_are_refused_with_the_rule() {
        assert_eq!(check(""), Err(ToolNameError::Empty));
        assert_eq!(check(&"x".repeat(129)), Err(ToolNameError::TooLong(129)));
        assert_eq!(check("search__a\0b"), Err(ToolNameError::BadCharacter(9)));
        assert_eq!(check("a b"), Err(ToolNameError::BadCharacter(1)));
        assert_eq!(check("tool/../x"), Err(ToolNameError::BadCharacter(4)));
        assert_eq!(check("é"), Err(ToolNameError::BadCharacter(0)));
        assert_eq!(check("x\n"), Err(ToolNameError::BadCharacter(1)));
        let message = check(&"n".repeat(3000)).unwrap_err().to_string();
        assert!(message.starts_with(TOOL_NAME_RULE), "{message}");
        assert!(message.contains("3000 bytes"), "{message}");
    }
}
