//! The quiet counter: while the inbox is open, requests submitted and decided elsewhere are
//! counted here ("3 new · 1 decided") instead of being pushed into the list, which would move
//! rows under the reviewer's cursor. Refreshing shows them.
//!
//! An island reading the server-sent events of `/inbox/events`; without JavaScript there is
//! no counter and reloading the page shows the same thing.

use leptos::prelude::*;

#[island]
pub fn LiveCounter() -> impl IntoView {
    let (submitted, set_submitted) = signal(0u32);
    let (decided, set_decided) = signal(0u32);
    let (connected, set_connected) = signal(false);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        listen(set_submitted, set_decided, set_connected);
        #[cfg(not(feature = "hydrate"))]
        let _ = (set_submitted, set_decided, set_connected);
    });
    let text = move || {
        let mut parts = Vec::new();
        match submitted.get() {
            0 => {}
            1 => parts.push("1 new request".to_owned()),
            n => parts.push(format!("{n} new requests")),
        }
        match decided.get() {
            0 => {}
            n => parts.push(format!("{n} decided")),
        }
        parts.join(" · ")
    };
    view! {
        <p class="live" aria-live="polite" data-testid="live-counter"
            data-connected=move || connected.get().to_string()>
            <span hidden=move || submitted.get() + decided.get() == 0>
                {text}" — "<a href="" data-testid="live-refresh">"Refresh"</a>
            </span>
        </p>
    }
}

#[cfg(feature = "hydrate")]
fn listen(
    set_submitted: WriteSignal<u32>,
    set_decided: WriteSignal<u32>,
    set_connected: WriteSignal<bool>,
) {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new("/inbox/events") else {
        return;
    };
    let on_change =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let kind = ev
                .data()
                .as_string()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned));
            match kind.as_deref() {
                Some("submitted") => set_submitted.update(|n| *n += 1),
                Some("decided") => set_decided.update(|n| *n += 1),
                _ => {}
            }
        });
    let on_open = Closure::<dyn FnMut()>::new(move || set_connected.set(true));
    let _ = source.add_event_listener_with_callback("changed", on_change.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    // The page owns the stream for as long as it is shown; the browser closes it on leaving.
    on_change.forget();
    on_open.forget();
    std::mem::forget(source);
}
