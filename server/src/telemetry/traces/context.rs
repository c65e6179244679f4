//! W3C trace context (`traceparent`, `tracestate`): parsing what callers send and formatting
//! what the gateway sends upstream. <https://www.w3.org/TR/trace-context/>

/// A caller's position in a distributed trace, from a valid `traceparent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never zero).
    pub trace_id: u128,
    /// The caller's span id, the parent of our root span (never zero).
    pub parent_span_id: u64,
    /// The caller's `sampled` flag.
    pub sampled: bool,
    /// The caller's `tracestate`, passed on unchanged (only with a valid `traceparent`).
    pub tracestate: Option<String>,
}

/// Parses a `traceparent` header value; `None` for anything malformed (the caller then gets
/// a new trace). Version `00` must be exactly 55 characters; later versions may append
/// fields after a `-`; version `ff`, upper-case hex and all-zero ids are invalid.
pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let value = value.trim();
    let bytes = value.as_bytes();
    if bytes.len() < 55 || !value.is_ascii() {
        return None;
    }
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let (version, trace_id, parent, flags) =
        (&value[0..2], &value[3..35], &value[36..52], &value[53..55]);
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    if ![version, trace_id, parent, flags]
        .into_iter()
        .all(lower_hex)
        || version == "ff"
    {
        return None;
    }
    // Version 00 has exactly four fields; a later version may add more after a dash.
    if (version == "00" && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
        return None;
    }
    let trace_id = u128::from_str_radix(trace_id, 16)
        .ok()
        .filter(|id| *id != 0)?;
    let parent_span_id = u64::from_str_radix(parent, 16).ok().filter(|id| *id != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceContext {
        trace_id,
        parent_span_id,
        sampled: flags & 1 == 1,
        tracestate: None,
    })
}

/// Parses `traceparent` and attaches `tracestate` (kept only if short and printable ASCII).
pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
    let mut context = parse_traceparent(traceparent)?;
    context.tracestate = tracestate
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 512 && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(str::to_string);
    Some(context)
}

/// A `traceparent` value for a span of ours (version 00, sampled).
pub fn format_traceparent(trace_id: u128, span_id: u64) -> String {
    format!("00-{}-{}-01", trace_id_hex(trace_id), span_id_hex(span_id))
}

/// A trace id as 32 lower-case hex digits.
pub fn trace_id_hex(id: u128) -> String {
    format!("{id:032x}")
}

/// A span id as 16 lower-case hex digits.
pub fn span_id_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// A fresh random trace id (never zero).
pub fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

/// A fresh random span id (never zero).
pub fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_is_parsed() {
        let context = parse_traceparent(VALID).expect("valid");
        assert_eq!(
            trace_id_hex(context.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(span_id_hex(context.parent_span_id), "b7ad6b7169203331");
        assert!(context.sampled);
        let unsampled = parse_traceparent(&VALID.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled);
        assert_eq!(
            format_traceparent(context.trace_id, context.parent_span_id),
            VALID
        );
    }

    #[test]
    fn later_versions_may_append_fields() {
        let future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever";
        assert!(parse_traceparent(future).is_some());
        // …but version 00 may not, and the appended part must start with a dash.
        assert!(parse_traceparent(&format!("{VALID}-extra")).is_none());
        assert!(
            parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x").is_none()
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "garbage",
            &VALID[..54],
            &VALID.to_uppercase(),
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00-0af7651916cd43dd8448eb211c8031é-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn tracestate_is_kept_only_with_a_valid_traceparent() {
        let context = parse(VALID, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(context.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        assert!(parse("nope", Some("congo=t61rcWkgMzE")).is_none());
        assert_eq!(parse(VALID, Some("bad\nvalue")).unwrap().tracestate, None);
    }

    #[test]
    fn new_ids_are_never_zero_and_differ() {
        let (a, b) = (new_trace_id(), new_trace_id());
        assert!(a != 0 && b != 0 && a != b);
        assert_ne!(new_span_id(), 0);
    }
}
