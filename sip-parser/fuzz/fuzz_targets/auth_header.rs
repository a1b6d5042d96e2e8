//! Authorization / WWW-Authenticate values.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = sip_parser::AuthValue::parse(data) {
        let n = a.params().count();
        let _ = (a.param("nonce"), a.param("response"), a.is_digest(), n);
    }
});
