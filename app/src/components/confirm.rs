//! The confirm step shown in place of a button whose action is hard to undo.

use leptos::prelude::*;

/// The question with Confirm and Cancel; Confirm is disabled while `pending`.
#[component]
pub fn ConfirmStep(
    /// What is about to happen, as a question.
    question: String,
    /// Whether a command is being sent (no second one meanwhile).
    #[prop(into)]
    pending: Signal<bool>,
    /// Runs on Confirm.
    on_confirm: impl Fn() + 'static,
    /// Runs on Cancel.
    on_cancel: impl Fn() + 'static,
) -> impl IntoView {
    let label = question.clone();
    view! {
        <span class="confirm-step" role="group" aria-label=label>
            <span>{question}</span>
            <button
                type="button"
                class="small"
                data-testid="confirm"
                disabled=move || pending.get()
                on:click=move |_| on_confirm()
            >
                "Confirm"
            </button>
            <button
                type="button"
                class="secondary small"
                data-testid="cancel"
                on:click=move |_| on_cancel()
            >
                "Cancel"
            </button>
        </span>
    }
}
