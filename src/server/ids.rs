//! Identifiers are UUIDv7 in simple (hex) form with a short type prefix: they sort by creation
//! time, are unique across processes without coordination, and say what they name in logs.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = super::new_id("req");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id("req");
        assert!(a.starts_with("req_") && a.len() == 36, "{a}");
        assert!(a < b);
    }
}
