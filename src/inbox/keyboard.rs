//! The keyboard-shortcut help: an island, so it is one of the few parts of the page that
//! hydrates. Pressing `?` or clicking the button toggles it.

use leptos::prelude::*;

#[island]
pub fn KeyboardHelp() -> impl IntoView {
    let (open, set_open) = signal(false);
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, so this marks the island as live once hydrated.
    Effect::new(move |_| set_hydrated.set(true));
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            let typing = ev
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                .map(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
                .unwrap_or(false);
            if ev.key() == "?" && !typing {
                set_open.update(|o| *o = !*o);
            }
        });
        on_cleanup(move || handle.remove());
    }
    view! {
        <div class="kbd-help" data-hydrated=move || hydrated.get().to_string()>
            <button
                type="button"
                aria-expanded=move || open.get().to_string()
                aria-controls="kbd-help-panel"
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                "Shortcuts "<kbd>"?"</kbd>
            </button>
            <div id="kbd-help-panel" class="kbd-panel" hidden=move || !open.get() role="dialog" aria-label="Keyboard shortcuts">
                <dl>
                    <dt><kbd>"?"</kbd></dt><dd>"Show or hide this help"</dd>
                    <dt><kbd>"j"</kbd>" / "<kbd>"k"</kbd></dt><dd>"Next / previous item (coming with triage)"</dd>
                </dl>
            </div>
        </div>
    }
}
