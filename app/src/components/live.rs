//! Live updates: the server's event stream (`/api/events`, server-sent events) as a signal
//! that pages use to refetch the moment the fleet changes, plus a steady poll for the
//! numbers that change all the time (in-flight calls, latency).

use crate::error::AppError;
use leptos::prelude::*;
use std::future::Future;
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

/// A value a page rendered first (on the server, or when its URL changed) that the browser
/// then keeps current, so rows bound to it update in place instead of the whole page
/// rendering again (buttons stay where the pointer is).
pub struct LiveValue<T: Send + Sync + 'static> {
    /// The newest answer.
    pub value: RwSignal<T>,
    /// Why the newest refresh failed, until one succeeds (the value is kept meanwhile).
    pub failed: RwSignal<Option<AppError>>,
}

impl<T: Send + Sync + 'static> Clone for LiveValue<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for LiveValue<T> {}

/// Starts from `first` and, each time `version` moves, replaces it with what `fetch`
/// answers when that differs (an unchanged answer redraws nothing). One request at a time:
/// moves while one is out (a burst of fleet events) are folded into a single request after
/// it, so a big fleet's events cannot flood the server.
pub fn use_live_value<T, Fut>(
    first: T,
    version: Signal<u64>,
    fetch: impl Fn() -> Fut + 'static,
) -> LiveValue<T>
where
    T: PartialEq + Send + Sync + 'static,
    Fut: Future<Output = Result<T, AppError>> + 'static,
{
    let live = LiveValue {
        value: RwSignal::new(first),
        failed: RwSignal::new(None),
    };
    let refresh = Refresh {
        live,
        state: StoredValue::new(RefreshState::default()),
        fetch: std::rc::Rc::new(fetch),
    };
    Effect::new(move |previous: Option<u64>| {
        let now = version.get();
        // The first run only records the version: `first` is already current.
        if previous.is_some_and(|previous| previous != now) {
            refresh.clone().run();
        }
        now
    });
    live
}

/// Whether a refresh is out, and whether another was asked for meanwhile.
#[derive(Default)]
struct RefreshState {
    in_flight: bool,
    again: bool,
}

/// What a live value needs to refresh itself.
struct Refresh<T: Send + Sync + 'static, F> {
    live: LiveValue<T>,
    state: StoredValue<RefreshState>,
    fetch: std::rc::Rc<F>,
}

impl<T: Send + Sync + 'static, F> Clone for Refresh<T, F> {
    fn clone(&self) -> Self {
        Refresh {
            live: self.live,
            state: self.state,
            fetch: self.fetch.clone(),
        }
    }
}

impl<T, F, Fut> Refresh<T, F>
where
    T: PartialEq + Send + Sync + 'static,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<T, AppError>> + 'static,
{
    /// Sends a request, or marks one as wanted when one is out.
    fn run(self) {
        let busy = self.state.try_update_value(|state| {
            let busy = state.in_flight;
            state.again |= busy;
            state.in_flight = true;
            busy
        });
        if busy != Some(false) {
            return;
        }
        let answer = (self.fetch)();
        leptos::task::spawn_local(async move {
            let answer = answer.await;
            match answer {
                Ok(next) => {
                    if self.live.value.try_with_untracked(|now| *now != next) == Some(true) {
                        self.live.value.try_set(next);
                    }
                    if self.live.failed.try_with_untracked(Option::is_some) == Some(true) {
                        self.live.failed.try_set(None);
                    }
                }
                Err(error) => {
                    self.live.failed.try_set(Some(error));
                }
            }
            let again = self.state.try_update_value(|state| {
                state.in_flight = false;
                std::mem::take(&mut state.again)
            });
            if again == Some(true) {
                self.run();
            }
        });
    }
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
