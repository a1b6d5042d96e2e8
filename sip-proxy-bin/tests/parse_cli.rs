//! `sip-proxy parse` end to end: the real binary on corpus files, stdin and streams.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn corpus(f: &str) -> String {
    format!("{}/../../shared/corpus/{f}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sip-proxy"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sip-proxy");
    let mut pipe = child.stdin.take().unwrap();
    // A command that does not read stdin may exit first: a broken pipe is not a failure.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prints_the_documented_json() {
    let o = run(&["parse", &corpus("rfc4475/wsinv.sip")], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = &json_lines(&o)[0];
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "method",
            "uri",
            "status",
            "reason",
            "call_id",
            "cseq",
            "from",
            "to",
            "via",
            "max_forwards",
            "contacts",
            "content_length",
            "headers",
            "body_len"
        ]
    );
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(v["uri"], "sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert_eq!(v["status"], serde_json::Value::Null);
    assert_eq!(v["cseq"]["seq"], 9);
    assert_eq!(v["to"]["tag"], "1918181833n");
    assert_eq!(v["from"]["tag"], "98asjd8");
    assert_eq!(v["via"].as_array().unwrap().len(), 3);
    assert_eq!(v["via"][2]["branch"], "z9hG4bK30239");
    assert_eq!(v["via"][1]["transport"], "TCP");
    assert_eq!(v["max_forwards"], 68);
    assert_eq!(v["contacts"][0]["q"], 0.33);
    assert_eq!(v["content_length"], 150);
    assert_eq!(v["body_len"], 150);
    assert_eq!(v["headers"][0][0], "TO");
}

#[test]
fn responses_and_stdin() {
    let data = std::fs::read(corpus("rfc4475/noreason.sip")).unwrap();
    let o = run(&["parse", "-"], Some(&data));
    assert!(o.status.success());
    let v = &json_lines(&o)[0];
    assert_eq!(
        (
            v["kind"].as_str(),
            v["status"].as_u64(),
            v["reason"].as_str()
        ),
        (Some("response"), Some(100), Some(""))
    );
}

#[test]
fn validate_reports_offset_and_reason_and_exits_1() {
    let o = run(
        &[
            "parse",
            "--validate",
            &corpus("rfc4475/wsinv.sip"),
            &corpus("rfc4475/badvers.sip"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json_lines(&o).len(),
        1,
        "the valid message is still printed"
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("badvers.sip: byte ") && err.contains("505"),
        "{err}"
    );
    // Without --validate it frames and prints.
    let o = run(&["parse", &corpus("rfc4475/badvers.sip")], None);
    assert!(o.status.success());
    // Unframeable input: error even without --validate.
    let o = run(&["parse", &corpus("rfc4475/bigcode.sip")], None);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("bigcode.sip: byte 8: malformed start line"),
        "{err}"
    );
}

#[test]
fn every_valid_corpus_message_passes_validate() {
    let index = std::fs::read_to_string(corpus("INDEX.tsv")).unwrap();
    let files: Vec<String> = index
        .lines()
        .skip(1)
        .filter(|l| !l.contains("\tinvalid\t"))
        .map(|l| corpus(l.split('\t').next().unwrap()))
        .collect();
    let mut args = vec!["parse", "--validate"];
    args.extend(files.iter().map(String::as_str));
    let o = run(&args, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o).len(), files.len());
}

#[test]
fn stream_mode_splits_messages_and_skips_keepalives() {
    let one = std::fs::read(corpus("rfc4475/esc01.sip")).unwrap();
    let two = std::fs::read(corpus("rfc4475/mpart01.sip")).unwrap();
    let mut wire = b"\r\n\r\n".to_vec();
    wire.extend_from_slice(&one);
    wire.extend_from_slice(&two);
    let o = run(&["parse", "--stream", "-"], Some(&wire));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_lines(&o);
    assert_eq!(v.len(), 2);
    assert_eq!(v[1]["body_len"], 553);
    // A negative Content-Length on a stream loses framing: error, exit 1.
    let ncl = std::fs::read(corpus("rfc4475/ncl.sip")).unwrap();
    let o = run(&["parse", "--stream", "-"], Some(&ncl));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Content-Length"));
}

#[test]
fn help_documents_the_output() {
    let o = run(&["parse", "--help"], None);
    assert!(o.status.success());
    let h = String::from_utf8(o.stdout).unwrap();
    assert!(
        h.contains("--validate") && h.contains("--stream") && h.contains("call_id"),
        "{h}"
    );
}
