//! The size of a tool result, measured without serialising it: what `max_result_bytes`
//! and the result cache's byte bound count. It walks the parsed result once and adds up
//! its texts, binary payloads and JSON values, close to (never far below) their JSON size.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

/// Bytes a JSON scalar or punctuation counts for at least.
const SCALAR_BYTES: usize = 8;

/// About how many bytes `result` takes as JSON.
pub fn approx_bytes(result: &CallToolResult) -> usize {
    let content: usize = result.content.iter().map(content_bytes).sum();
    let structured = result.structured_content.as_ref().map_or(0, json_bytes);
    let meta = result.meta.as_ref().map_or(0, |meta| {
        meta.0.iter().map(|(k, v)| k.len() + json_bytes(v)).sum()
    });
    content + structured + meta + SCALAR_BYTES
}

fn content_bytes(block: &ContentBlock) -> usize {
    let payload = if let Some(text) = block.as_text() {
        text.text.len()
    } else if let Some(image) = block.as_image() {
        image.data.len() + image.mime_type.len()
    } else if let Some(audio) = block.as_audio() {
        audio.data.len() + audio.mime_type.len()
    } else if let Some(resource) = block.as_resource() {
        match &resource.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => uri.len() + text.len(),
            ResourceContents::BlobResourceContents { uri, blob, .. } => uri.len() + blob.len(),
            other => serde_json::to_value(other).map_or(0, |v| json_bytes(&v)),
        }
    } else {
        // Resource links and anything newer: measured through their JSON value.
        serde_json::to_value(block).map_or(0, |v| json_bytes(&v))
    };
    payload + 4 * SCALAR_BYTES
}

/// About how many bytes `value` takes as JSON (strings by length, without escaping).
pub fn json_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(json_bytes).sum::<usize>() + items.len() + 2,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + 3 + json_bytes(v))
                .sum::<usize>()
                + 2
        }
        _ => SCALAR_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_estimate_is_close_to_the_json_size_and_never_far_below() {
        let big = "y".repeat(100_000);
        let results = [
            CallToolResult::success(vec![ContentBlock::text(big.clone())]),
            CallToolResult::structured(json!({"rows": [{"id": 1, "name": big}], "n": 1})),
            CallToolResult::success(vec![ContentBlock::text("short")]),
        ];
        for result in &results {
            let exact = serde_json::to_vec(result).unwrap().len();
            let estimate = approx_bytes(result);
            assert!(
                // Within 10% (and a few bytes of envelope), never more than twice.
                estimate * 10 + 640 >= exact * 9 && estimate <= exact * 2 + 256,
                "estimate {estimate} for {exact} bytes"
            );
        }
    }

    #[test]
    fn json_values_count_their_strings_and_structure() {
        assert_eq!(json_bytes(&json!("abc")), 5);
        assert!(json_bytes(&json!({"k": ["a", "b"]})) >= r#"{"k":["a","b"]}"#.len());
    }
}
