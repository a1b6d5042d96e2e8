//! The Date header value (RFC 3261 §20.17): an RFC 1123 date in GMT, formatted from Unix
//! seconds without a calendar library.

use core::fmt;

const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The last second an RFC 1123 date (four-digit year) can hold: 9999-12-31 23:59:59.
const MAX: u64 = 253_402_300_799;

/// A `SIP-date` (RFC 3261 §20.17: RFC 1123 format, always `GMT`), e.g. for the Date header a
/// registrar puts in its 200 to REGISTER (§10.3 step 8) so that simple clients learn the
/// time. Held inline (29 bytes), no allocation.
///
/// ```
/// use sip_parser::SipDate;
/// // The example of RFC 3261 §20.17.
/// let date = SipDate::from_unix(1_289_690_940);
/// assert_eq!(date.as_str(), "Sat, 13 Nov 2010 23:29:00 GMT");
/// // With std: SipDate::from_unix(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SipDate([u8; 29]);

impl SipDate {
    /// The date of `secs` seconds after 1970-01-01 00:00:00 GMT; later than year 9999 gives
    /// 31 Dec 9999 23:59:59, the last date the format can write.
    pub fn from_unix(secs: u64) -> Self {
        let secs = secs.min(MAX);
        let days = secs / 86_400;
        let sod = secs % 86_400;
        let (year, month, day) = civil(days);
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[0..3].copy_from_slice(DAYS[((days + 4) % 7) as usize]); // 1970-01-01 was a Thursday
        two(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
        two(&mut out[12..14], year / 100);
        two(&mut out[14..16], year % 100);
        two(&mut out[17..19], sod / 3600);
        two(&mut out[20..22], sod / 60 % 60);
        two(&mut out[23..25], sod % 60);
        Self(out)
    }

    /// The date as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and the fixed names above are ever written.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Writes `n` (0–99) as two digits.
fn two(dst: &mut [u8], n: u64) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01, in the proleptic
/// Gregorian calendar: counted in 400-year eras of 146 097 days, with years starting on
/// 1 March so that the leap day falls at the end.
fn civil(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for SipDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SipDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for SipDate {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for SipDate {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Day by day from 1970: the slow calendar the fast one must agree with.
    fn slow(mut days: u64) -> (u64, u64, u64, usize) {
        let weekday = ((days + 4) % 7) as usize;
        let leap = |y: u64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut year = 1970;
        loop {
            let len = if leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let lens = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 0;
        while days >= lens[month] {
            days -= lens[month];
            month += 1;
        }
        (year, month as u64 + 1, days + 1, weekday)
    }

    #[test]
    fn known_dates() {
        for (secs, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (1_289_690_940, "Sat, 13 Nov 2010 23:29:00 GMT"), // RFC 3261 §20.17
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            assert_eq!(SipDate::from_unix(secs).as_str(), want);
        }
    }

    proptest! {
        #[test]
        fn agrees_with_counting_days(days in 0u64..2_932_897, sod in 0u64..86_400) {
            let d = SipDate::from_unix(days * 86_400 + sod);
            let (y, m, dd, wd) = slow(days);
            let want = alloc::format!(
                "{}, {dd:02} {} {y:04} {:02}:{:02}:{:02} GMT",
                core::str::from_utf8(DAYS[wd]).unwrap(),
                core::str::from_utf8(MONTHS[m as usize - 1]).unwrap(),
                sod / 3600, sod / 60 % 60, sod % 60
            );
            prop_assert_eq!(d.as_str(), want.as_str());
            prop_assert!(crate::headers::check_date(d.as_str().as_bytes()).is_ok());
        }
    }
}
