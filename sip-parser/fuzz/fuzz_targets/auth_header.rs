//! Authorization / WWW-Authenticate values: the scanner never panics, `AuthValue::parse`
//! accepts exactly what the streaming `AuthScanner` reads without error, and both hand out
//! the same parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_parser::{AuthScanner, AuthValue};

fuzz_target!(|data: &[u8]| {
    let whole = AuthValue::parse(data);
    let streamed: Option<Result<Vec<_>, _>> = AuthScanner::new(data).ok().map(Iterator::collect);
    match (&whole, streamed) {
        (Ok(a), Some(Ok(ps))) => {
            assert!(a.params().eq(ps.iter().copied()));
            for p in &ps {
                let d = p.decoded();
                assert!(d.len() <= p.value.len());
                assert_eq!(&data[p.value_offset..p.value_offset + p.value.len()], p.value);
                assert!(data[p.name_offset..].starts_with(p.name));
            }
            // An accepted value is UTF-8 as a whole.
            assert!(core::str::from_utf8(data).is_ok());
            let _ = (a.param("nonce"), a.is_digest(), a.token68());
        }
        (Err(_), None | Some(Err(_))) => {}
        (w, s) => panic!("AuthValue {w:?} but scanner {s:?}"),
    }
});
