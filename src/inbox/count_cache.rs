//! The inbox's per-group counts, remembered until the open requests change.
//!
//! A page needs its rows (a short index walk) and the counts of every group over all pages,
//! which means reading every open request the filter selects: at 100,000 open requests that
//! scan is most of a page's cost, and twenty reviewers mostly look at the same few views. The
//! counts of a view are kept until this process sees any change to a request (its own, or
//! another process's relayed through the live updates) and never longer than [`MAX_AGE`], which
//! bounds how stale a count can get from a change no notification announced (another process
//! on the same SQLite file, a lost PostgreSQL notification). Views whose counts depend on the
//! clock or the viewer (waiting time, deadline, assigned) are never cached: their statement
//! carries the current instant, so no two are alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a count is reused, whatever the notifications say.
pub const MAX_AGE: Duration = Duration::from_secs(2);
/// Distinct views remembered at once; more are not worth keeping (all are dropped and refilled).
const CAPACITY: usize = 512;

pub type Counts = Arc<Vec<(String, i64)>>;

#[derive(Default)]
pub struct CountCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    generation: u64,
    stored: Instant,
    counts: Counts,
}

impl CountCache {
    /// The counts stored for `key`, if nothing changed since (`generation`) and they are fresh.
    pub fn get(&self, key: &str, generation: u64, now: Instant) -> Option<Counts> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.generation == generation && now.duration_since(e.stored) < MAX_AGE)
            .map(|e| e.counts.clone())
    }

    /// Remembers `counts` for `key` as read at `generation`.
    pub fn put(&self, key: String, generation: u64, now: Instant, counts: Counts) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                stored: now,
                counts,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: i64) -> Counts {
        Arc::new(vec![(String::new(), n)])
    }

    #[test]
    fn a_count_is_reused_until_anything_changes() {
        let cache = CountCache::default();
        let t = Instant::now();
        cache.put("tier=review".into(), 7, t, counts(3));
        assert_eq!(cache.get("tier=review", 7, t).unwrap()[0].1, 3);
        assert!(
            cache.get("tier=review", 8, t).is_none(),
            "a change was seen"
        );
        assert!(cache.get("tier=dual", 7, t).is_none(), "another view");
    }

    #[test]
    fn a_count_expires_even_without_a_change() {
        let cache = CountCache::default();
        let t = Instant::now();
        cache.put("k".into(), 1, t, counts(3));
        assert!(cache
            .get("k", 1, t + MAX_AGE - Duration::from_millis(1))
            .is_some());
        assert!(cache.get("k", 1, t + MAX_AGE).is_none());
    }

    #[test]
    fn a_full_cache_starts_over_rather_than_growing() {
        let cache = CountCache::default();
        let t = Instant::now();
        for i in 0..CAPACITY + 1 {
            cache.put(format!("view {i}"), 1, t, counts(i as i64));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
        assert!(cache.get(&format!("view {CAPACITY}"), 1, t).is_some());
    }
}
