//! The text of a caught panic, for every place that reports one (a run's host, a shrink
//! replay, a scenario): its `String` or `&str` payload, or "non-string panic".

use std::any::Any;

/// The message of a panic payload.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_both_string_kinds_and_others() {
        let caught = |f: fn()| std::panic::catch_unwind(f).expect_err("panics");
        assert_eq!(
            panic_message(caught(|| panic!("static")).as_ref()),
            "static"
        );
        assert_eq!(panic_message(caught(|| panic!("{}", 4)).as_ref()), "4");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).expect_err("panics");
        assert_eq!(panic_message(other.as_ref()), "non-string panic");
    }
}
