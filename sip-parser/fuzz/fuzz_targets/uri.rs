//! URI and name-addr parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = sip_parser::Uri::parse(data) {
        let _ = (u.user_unescaped(), u.host_kind(), u.params.iter().count(), u.params.get("lr"));
    }
    if let Ok(a) = sip_parser::NameAddr::parse(data) {
        let _ = (a.tag(), a.display_name_unescaped(), a.params.iter().count());
    }
});
