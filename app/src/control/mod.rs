//! The seam between the dashboard and the server: the questions and commands the pages need,
//! one trait per area (users, fleet, access, audit, telemetry, ROI).
//!
//! `app` declares them; the `fleetdeck` server implements them over its registry and store
//! and provides the whole as Leptos context ([`SharedControlPlane`]). Server functions
//! authorise the session's user first, then call it, passing the acting user so that every
//! change can be audited. The admin API and the CLI call the same methods.

mod access;
mod audit;
mod fleet;
mod roi;
mod telemetry;
mod users;

pub use access::AccessPlane;
pub use audit::AuditPlane;
pub use fleet::FleetPlane;
pub use roi::RoiPlane;
pub use telemetry::TelemetryPlane;
pub use users::{SessionStamp, UsersPlane};

use std::sync::Arc;

/// The control plane as the dashboard sees it: every area at once.
pub trait ControlPlane:
    UsersPlane + FleetPlane + AccessPlane + AuditPlane + TelemetryPlane + RoiPlane + 'static
{
}

impl<T> ControlPlane for T where
    T: UsersPlane + FleetPlane + AccessPlane + AuditPlane + TelemetryPlane + RoiPlane + 'static
{
}

/// The shared handle server functions find in their context.
pub type SharedControlPlane = Arc<dyn ControlPlane>;
