//! The config loader on any input: never a panic, whatever the bytes (YAML syntax, types,
//! values). Addresses are not resolved here (literal IPs only), so no input touches the
//! network.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchyard::config::load_str_offline(text);
    }
});
