//! Keyboard triage: an island (one of the few parts of a page that hydrates) that turns keys
//! into clicks on what the page already offers, so every shortcut has a visible, mouse- and
//! no-JavaScript-equivalent control, and the shortcuts can be switched off.
//!
//! In the list: `j`/`k` move (focusing the title, so Enter opens too), `o` opens, `x` selects for bulk approval, `a` approves
//! the selection. On a request: `a` approve, `e` edit, `r` reject (focuses the reason), `s`
//! escalate — each clicks or focuses the element marked `data-kbd` with that name.

use leptos::prelude::*;

/// Where the on/off choice is remembered, per browser.
#[cfg(feature = "hydrate")]
const STORAGE_KEY: &str = "countersign.shortcuts";

#[island]
pub fn KeyboardHelp() -> impl IntoView {
    let (open, set_open) = signal(false);
    let (hydrated, set_hydrated) = signal(false);
    let (enabled, set_enabled) = signal(true);
    // Effects run only in the browser, so this marks the island as live once hydrated.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        set_enabled.set(browser::stored_enabled());
        set_hydrated.set(true)
    });
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || browser::typing(&ev) {
                return;
            }
            let key = ev.key();
            if key == "?" {
                set_open.update(|o| *o = !*o);
                return;
            }
            if enabled.get_untracked() && browser::act(&key) {
                ev.prevent_default();
            }
        });
        on_cleanup(move || handle.remove());
    }
    let toggle = move |_| {
        let on = !enabled.get_untracked();
        set_enabled.set(on);
        #[cfg(feature = "hydrate")]
        browser::store_enabled(on);
    };
    view! {
        <div class="kbd-help" data-hydrated=move || hydrated.get().to_string() data-shortcuts=move || if enabled.get() { "on" } else { "off" }>
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
                    <dt><kbd>"j"</kbd>" / "<kbd>"k"</kbd></dt><dd>"Next / previous request"</dd>
                    <dt><kbd>"o"</kbd>" or "<kbd>"Enter"</kbd></dt><dd>"Open the request"</dd>
                    <dt><kbd>"x"</kbd></dt><dd>"Select it for bulk approval"</dd>
                    <dt><kbd>"a"</kbd></dt><dd>"Approve (in the list: approve the selection)"</dd>
                    <dt><kbd>"e"</kbd></dt><dd>"Change the payload before approving"</dd>
                    <dt><kbd>"r"</kbd></dt><dd>"Turn down, typing the reason"</dd>
                    <dt><kbd>"s"</kbd></dt><dd>"Hand to the escalation group"</dd>
                    <dt><kbd>"?"</kbd></dt><dd>"Show or hide this help"</dd>
                </dl>
                <label class="kbd-toggle">
                    <input type="checkbox" prop:checked=move || enabled.get() on:change=toggle/>
                    " Use keyboard shortcuts"
                </label>
            </div>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::JsCast;
    use web_sys::{Element, HtmlElement, HtmlInputElement};

    fn document() -> Option<web_sys::Document> {
        web_sys::window().and_then(|w| w.document())
    }

    pub fn stored_enabled() -> bool {
        web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(super::STORAGE_KEY).ok().flatten())
            .map(|v| v != "off")
            .unwrap_or(true)
    }

    pub fn store_enabled(on: bool) {
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(super::STORAGE_KEY, if on { "on" } else { "off" });
        }
    }

    /// Keys typed into a text field are text, not shortcuts (a checkbox is not a text field).
    pub fn typing(ev: &web_sys::KeyboardEvent) -> bool {
        ev.target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .map(|el| match el.tag_name().as_str() {
                "TEXTAREA" | "SELECT" => true,
                "INPUT" => !matches!(
                    el.get_attribute("type").as_deref(),
                    Some("checkbox" | "radio" | "submit" | "button")
                ),
                _ => el.has_attribute("contenteditable"),
            })
            .unwrap_or(false)
    }

    fn rows() -> Vec<Element> {
        let Some(list) = document().and_then(|d| d.query_selector_all("tr.inbox-row").ok()) else {
            return Vec::new();
        };
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<Element>().ok())
            .collect()
    }

    fn current(rows: &[Element]) -> Option<usize> {
        rows.iter()
            .position(|r| r.class_list().contains("kbd-current"))
    }

    fn mark(rows: &[Element], index: usize) {
        for r in rows {
            let _ = r.class_list().remove_1("kbd-current");
        }
        if let Some(row) = rows.get(index) {
            let _ = row.class_list().add_1("kbd-current");
            row.scroll_into_view_with_bool(false);
            if let Some(link) = row
                .query_selector("a.title")
                .ok()
                .flatten()
                .and_then(|l| l.dyn_into::<HtmlElement>().ok())
            {
                let _ = link.focus();
            }
        }
    }

    fn marked(name: &str) -> Option<HtmlElement> {
        document()
            .and_then(|d| {
                d.query_selector(&format!("[data-kbd=\"{name}\"]"))
                    .ok()
                    .flatten()
            })
            .and_then(|e| e.dyn_into::<HtmlElement>().ok())
    }

    /// Clicks a button, or focuses a field, marked `data-kbd=name`.
    fn press(name: &str) -> bool {
        let Some(el) = marked(name) else {
            return false;
        };
        match el.tag_name().as_str() {
            "INPUT" | "TEXTAREA" | "SELECT" => {
                let _ = el.focus();
            }
            _ => el.click(),
        }
        true
    }

    /// Does what `key` means on this page; false when it means nothing here.
    pub fn act(key: &str) -> bool {
        let rows = rows();
        let at = current(&rows);
        match key {
            "j" | "k" if !rows.is_empty() => {
                let next = match (key, at) {
                    ("j", None) => 0,
                    ("j", Some(i)) => (i + 1).min(rows.len() - 1),
                    (_, None) => 0,
                    (_, Some(i)) => i.saturating_sub(1),
                };
                mark(&rows, next);
                true
            }
            "o" => {
                let href = at
                    .and_then(|i| rows[i].query_selector("a.title").ok().flatten())
                    .and_then(|a| a.get_attribute("href"));
                match (href, web_sys::window()) {
                    (Some(href), Some(w)) => w.location().set_href(&href).is_ok(),
                    _ => false,
                }
            }
            "x" => {
                let Some(i) = at else {
                    return false;
                };
                if let Some(boxed) = rows[i]
                    .query_selector("input[name=pick]")
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
                {
                    boxed.set_checked(!boxed.checked());
                }
                true
            }
            "a" if !rows.is_empty() => {
                let any_picked = document()
                    .and_then(|d| d.query_selector("input[name=pick]:checked").ok().flatten())
                    .is_some();
                any_picked && press("bulk-approve")
            }
            "a" => press("approve"),
            "e" => press("edit"),
            "r" => press("reject"),
            "s" => press("escalate"),
            _ => false,
        }
    }
}
