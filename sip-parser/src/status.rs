//! Reason phrases by status code: RFC 3261 §21 and the extensions in IANA's SIP response
//! code registry.

/// The usual reason phrase for a status code: every RFC 3261 §21 code and the registered
/// extensions (199, 204, 412, 417, 422–440, 469, 470, 489, 494, 555, 580, 607, 608, …).
/// An unregistered code gets the name of its class ("Client Error" for 4xx…), since RFC
/// 3261 §21 treats it as the class's x00.
///
/// ```
/// use sip_parser::reason_phrase;
/// assert_eq!(reason_phrase(423), "Interval Too Brief");
/// assert_eq!(reason_phrase(407), "Proxy Authentication Required");
/// assert_eq!(reason_phrase(481), "Call/Transaction Does Not Exist");
/// assert_eq!(reason_phrase(499), "Client Error");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    registered(status).unwrap_or(match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Global Failure",
    })
}

fn registered(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        424 => "Bad Location Information",
        425 => "Bad Alert Message",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity Info",
        437 => "Unsupported Credential",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code RFC 3261 §21 defines, with the phrase its section title gives.
    #[test]
    fn every_rfc3261_code() {
        let rfc3261 = [
            (100, "Trying"),
            (180, "Ringing"),
            (181, "Call Is Being Forwarded"),
            (182, "Queued"),
            (183, "Session Progress"),
            (200, "OK"),
            (300, "Multiple Choices"),
            (301, "Moved Permanently"),
            (302, "Moved Temporarily"),
            (305, "Use Proxy"),
            (380, "Alternative Service"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (402, "Payment Required"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (406, "Not Acceptable"),
            (407, "Proxy Authentication Required"),
            (408, "Request Timeout"),
            (410, "Gone"),
            (413, "Request Entity Too Large"),
            (414, "Request-URI Too Long"),
            (415, "Unsupported Media Type"),
            (416, "Unsupported URI Scheme"),
            (420, "Bad Extension"),
            (421, "Extension Required"),
            (423, "Interval Too Brief"),
            (480, "Temporarily Unavailable"),
            (481, "Call/Transaction Does Not Exist"),
            (482, "Loop Detected"),
            (483, "Too Many Hops"),
            (484, "Address Incomplete"),
            (485, "Ambiguous"),
            (486, "Busy Here"),
            (487, "Request Terminated"),
            (488, "Not Acceptable Here"),
            (491, "Request Pending"),
            (493, "Undecipherable"),
            (500, "Server Internal Error"),
            (501, "Not Implemented"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Server Time-out"),
            (505, "Version Not Supported"),
            (513, "Message Too Large"),
            (600, "Busy Everywhere"),
            (603, "Decline"),
            (604, "Does Not Exist Anywhere"),
            (606, "Not Acceptable"),
        ];
        for (code, phrase) in rfc3261 {
            assert_eq!(reason_phrase(code), phrase, "{code}");
        }
        assert_eq!(reason_phrase(489), "Bad Event");
        assert_eq!(reason_phrase(608), "Rejected");
        assert_eq!(reason_phrase(199), "Early Dialog Terminated");
        assert_eq!(reason_phrase(150), "Informational");
        assert_eq!(reason_phrase(299), "Success");
        assert_eq!(reason_phrase(399), "Redirection");
        assert_eq!(reason_phrase(599), "Server Error");
        assert_eq!(reason_phrase(699), "Global Failure");
    }
}
