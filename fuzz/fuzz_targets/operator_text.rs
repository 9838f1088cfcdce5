//! Text an operator writes: a policy file, and the values of the pending
//! table's keys in OVSDB (decisions, entries, statuses, times). None may
//! panic, a bad policy must name a place in the file, and whatever parses
//! must print back to text that parses the same.
#![no_main]

use std::time::UNIX_EPOCH;

use augur::pending::{Decision, EntryId, PendingEntry, Status, Timestamp};
use augur::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Policy::parse(text, "fuzz.toml", UNIX_EPOCH) {
        assert!(e.line >= 1 && e.column >= 1, "{e}");
    }
    if let Ok(decision) = Decision::parse(text) {
        assert_eq!(Decision::parse(&decision.to_string()), Ok(decision));
    }
    if let Some(status) = Status::parse(text) {
        assert_eq!(Status::parse(&status.to_string()), Some(status));
    }
    if let Ok(time) = text.parse::<Timestamp>() {
        assert_eq!(time.to_string(), text);
    }
    if let Ok(id) = EntryId::new("0a1b") {
        if let Ok(entry) = PendingEntry::parse(id.clone(), text) {
            let value = entry.value();
            let again = PendingEntry::parse(id, &value).map(|e| e.value());
            assert_eq!(again.ok(), Some(value));
        }
    }
});
