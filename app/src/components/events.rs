//! Fleet events (health changes, capacity advice) as the Overview and Fleet pages list them.

use crate::wire::{FleetEventView, format_timestamp_utc};
use leptos::prelude::*;

/// Health changes and capacity advice, newest first, each with its evidence.
#[component]
pub fn FleetEvents(events: Vec<FleetEventView>) -> impl IntoView {
    view! {
        <ul class="events" data-testid="fleet-events">
            {events
                .into_iter()
                .map(|e| {
                    view! {
                        <li data-kind=e.kind.clone()>
                            <span class="muted">{format_timestamp_utc(e.at_ms)}</span>
                            " "
                            <span class=format!("badge event-{}", e.kind)>{e.kind.replace('_', " ")}</span>
                            " "
                            {e.message}
                            <details>
                                <summary>"evidence"</summary>
                                <pre>{e.evidence}</pre>
                            </details>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
