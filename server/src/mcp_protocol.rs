//! The MCP revisions and protocol names Fleetdeck speaks on both sides: to assistants
//! (`gateway::tools_call`) and to instances (`upstream::http_call`). Header names are lower
//! case (what `http` stores and compares).

/// The stateless revision (no `initialize`; per-request `_meta`, `server/discover`).
pub const MODERN: &str = "2026-07-28";
/// The revision asked for in an `initialize` (an instance may answer with an older one).
pub const LEGACY: &str = "2025-11-25";
/// The revisions with `initialize`.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// `MCP-Protocol-Version`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Mcp-Session-Id` (sessions of the revisions with `initialize`).
pub const SESSION_ID: &str = "mcp-session-id";
/// `Mcp-Method`: the JSON-RPC method, for middleboxes that do not parse bodies.
pub const MCP_METHOD: &str = "mcp-method";
/// `Mcp-Name`: the tool (or resource, prompt) a request names.
pub const MCP_NAME: &str = "mcp-name";

/// Request `_meta` keys of the stateless revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The client's capabilities, per request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The client's name and version, per request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
