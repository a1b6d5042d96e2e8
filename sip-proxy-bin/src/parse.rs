//! `sip-proxy parse`: print parsed SIP messages as JSON lines.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use serde_json::{Value, json};
use sip_parser::{Contact, Limits, Message, NameAddr, StreamDecoder, StreamItem};

/// Arguments of `sip-proxy parse`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each FILE holds one SIP message as received in one UDP datagram (or, with --stream, a TCP/TLS \
byte stream of messages framed by Content-Length). One JSON object is printed per message:

  {\"kind\":\"request\"|\"response\",\"method\",\"uri\",\"status\",\"reason\",\"call_id\",
   \"cseq\":{\"seq\",\"method\"},\"from\":{\"display\",\"uri\",\"tag\"},\"to\":{...},
   \"via\":[{\"transport\",\"host\",\"port\",\"branch\",\"received\",\"rport\"}],\"max_forwards\",
   \"contacts\":[{\"uri\",\"expires\",\"q\"}],\"content_length\",\"headers\":[[name,value],...],\"body_len\"}

Absent or unparsable values are null. A message that cannot be framed (or, with --validate, \
fails validation) is reported on stderr as `FILE: byte N: reason` and the exit status is 1.")]
pub(crate) struct ParseArgs {
    /// Also run the RFC 3261 checks a proxy applies before processing (status and reason
    /// phrase are reported on failure).
    #[arg(long)]
    validate: bool,
    /// Treat each input as a TCP/TLS byte stream holding any number of messages.
    #[arg(long)]
    stream: bool,
    /// Files to read; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Runs the subcommand.
pub(crate) fn run(args: &ParseArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    for path in &args.files {
        let name = path.display().to_string();
        let data = match read_input(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{name}: cannot read: {e}");
                ok = false;
                continue;
            }
        };
        let mut emit = |m: &Message, base: usize| -> bool {
            if args.validate {
                if let Err(e) = m.validate() {
                    eprintln!(
                        "{name}: byte {}: {} {}: {e}",
                        base + e.offset(),
                        e.status(),
                        e.reason_phrase()
                    );
                    return false;
                }
            }
            let line = serde_json::to_string(&to_json(m)).unwrap_or_default();
            writeln!(out, "{line}").is_ok()
        };
        if args.stream {
            let mut d = StreamDecoder::new(Limits::default());
            d.feed(&data);
            let mut start = 0;
            loop {
                match d.decode() {
                    Ok(Some(StreamItem::Message(m))) => {
                        ok &= emit(&m, start);
                        start = data.len() - d.buffered();
                    }
                    Ok(Some(_keepalive)) => start = data.len() - d.buffered(),
                    Ok(None) => {
                        if d.buffered() > 0 {
                            eprintln!(
                                "{name}: byte {start}: incomplete message at end of stream ({} bytes)",
                                d.buffered()
                            );
                            ok = false;
                        }
                        break;
                    }
                    Err(e) => {
                        let at = start + e.error.offset().unwrap_or(0);
                        eprintln!("{name}: byte {at}: {e}");
                        ok = false;
                        if e.fatal {
                            break;
                        }
                        start = data.len() - d.buffered();
                    }
                }
            }
        } else {
            match Message::parse(Bytes::from(data)) {
                Ok(m) => ok &= emit(&m, 0),
                Err(e) => {
                    eprintln!("{name}: byte {}: {e}", e.offset().unwrap_or(0));
                    ok = false;
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v)?;
        Ok(v)
    } else {
        std::fs::read(path)
    }
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn opt_text(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, text)
}

fn addr(a: &NameAddr<'_>) -> Value {
    json!({
        "display": a.display_name_unescaped().map_or(Value::Null, |d| text(&d)),
        "uri": text(a.raw_uri),
        "tag": a.tag(),
    })
}

/// The JSON shape documented in `--help`.
pub(crate) fn to_json(m: &Message) -> Value {
    let via: Vec<Value> = m
        .via()
        .map(|v| match v {
            Ok(v) => json!({
                "transport": v.transport,
                "host": v.host,
                "port": v.port,
                "branch": v.branch,
                "received": v.received,
                "rport": match v.rport { None => Value::Null, Some(None) => Value::Bool(true), Some(Some(p)) => json!(p) },
            }),
            Err(_) => Value::Null,
        })
        .collect();
    let contacts: Vec<Value> = m
        .contacts()
        .map(|c| match c {
            Ok(Contact::Star) => json!({"uri": "*", "expires": null, "q": null}),
            Ok(c @ Contact::Addr(a)) => json!({
                "uri": text(a.raw_uri),
                "expires": c.expires().ok().flatten(),
                "q": c.q().map(|q| f64::from(q) / 1000.0),
            }),
            Err(_) => Value::Null,
        })
        .collect();
    let headers: Vec<Value> = m
        .headers()
        .map(|h| json!([text(h.name), text(h.value)]))
        .collect();
    json!({
        "kind": if m.is_request() { "request" } else { "response" },
        "method": m.method(),
        "uri": opt_text(m.request_uri()),
        "status": m.status(),
        "reason": opt_text(m.reason()),
        "call_id": m.call_id(),
        "cseq": m.cseq().ok().map(|c| json!({"seq": c.seq, "method": c.method})),
        "from": m.from().ok().map(|a| addr(&a)),
        "to": m.to().ok().map(|a| addr(&a)),
        "via": via,
        "max_forwards": m.max_forwards().ok().flatten(),
        "contacts": contacts,
        "content_length": m.content_length(),
        "headers": headers,
        "body_len": m.body().len(),
    })
}
