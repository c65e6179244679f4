//! Live updates: the server's event stream (`/api/events`, server-sent events) as a signal
//! that pages use to refetch the moment the fleet changes, plus a steady poll for the
//! numbers that change all the time (in-flight calls, latency).

use leptos::prelude::*;
use std::time::Duration;

/// A counter that moves on every fleet event (instance state, breaker, tools, caches) and
/// every `poll`; read it in a `Resource`'s source to refetch. In the browser only: on the
/// server it stays 0, so server and browser render the same first page.
pub fn use_live_refresh(poll: Duration) -> ReadSignal<u64> {
    let (version, set_version) = signal(0u64);
    Effect::new(move |_| {
        let timer = set_interval_with_handle(move || set_version.update(|v| *v += 1), poll).ok();
        on_cleanup(move || {
            if let Some(timer) = timer {
                timer.clear();
            }
        });
        #[cfg(feature = "hydrate")]
        subscribe(set_version);
    });
    version
}

/// A counter that moves every `every`, in the browser only (0 on the server): for content
/// that changes slowly, like charts of per-minute series.
pub fn use_poll(every: Duration) -> ReadSignal<u64> {
    let (version, set_version) = signal(0u64);
    Effect::new(move |_| {
        let timer = set_interval_with_handle(move || set_version.update(|v| *v += 1), every).ok();
        on_cleanup(move || {
            if let Some(timer) = timer {
                timer.clear();
            }
        });
    });
    version
}

/// Opens the event stream; the browser's `EventSource` reconnects by itself after a drop.
#[cfg(feature = "hydrate")]
fn subscribe(set_version: WriteSignal<u64>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new("/api/events") else {
        return;
    };
    let on_event =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
            set_version.update(|v| *v += 1)
        });
    let _ = source.add_event_listener_with_callback("fleet", on_event.as_ref().unchecked_ref());
    // The stream and its callback live until the page that asked for them goes away.
    let held = StoredValue::new_local(Some((source, on_event)));
    on_cleanup(move || {
        held.update_value(|held| {
            if let Some((source, _callback)) = held.take() {
                source.close();
            }
        });
    });
}
