//! Keeps `docs/configuration.md` and `proxy.example.toml` honest against the code.
//!
//! * The keys `Config::from_toml` accepts are read from the parser itself (every section is
//!   `deny_unknown_fields`, and serde's refusal of an unknown key lists the accepted ones), so
//!   a key added to a config struct without a row in the reference fails
//!   `every_key_is_documented`, and a documented key the code does not take fails it too.
//! * Each row's default, when it is a TOML value, is parsed back and must give exactly the
//!   configuration the code builds without it; its type column must match the value's type.
//! * The `flag` column and the Flags table must name exactly the flags of `sip-proxy run`
//!   (read from its clap definition), and each flag must point at a documented key.
//! * `proxy.example.toml` must show every documented key (commented out or not) and pass
//!   `sip-proxy check`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args as _;
use sip_proxy::config::Config;
use sip_proxy::run::RunArgs;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `[[name]]` sections are arrays of tables; the top level is the section `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    Table,
    Array,
}

/// One row of a key table of `docs/configuration.md`.
#[derive(Debug, Clone)]
struct Row {
    section: String,
    kind: Kind,
    key: String,
    ty: String,
    default: String,
    flag: String,
    line: usize,
}

/// One row of the Flags table: the flags of its first column, the keys of its second.
#[derive(Debug)]
struct FlagRow {
    flags: Vec<String>,
    keys: String,
    line: usize,
}

/// The `code` spans of a Markdown fragment.
fn spans(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// The flag names (`--listen`, `-v`) in a fragment.
fn flags_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for span in spans(s) {
        for word in span.split([' ', '/', '|', '=']) {
            let ok =
                |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            if let Some(l) = word.strip_prefix("--") {
                if ok(l) {
                    out.push(word.to_owned());
                }
            } else if let Some(s) = word.strip_prefix('-') {
                if s.len() == 1 && ok(s) {
                    out.push(word.to_owned());
                }
            }
        }
    }
    out
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    // `\|` inside a cell is a literal bar.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// The key tables and the Flags table of `docs/configuration.md`.
fn parse_doc(text: &str) -> (Vec<Row>, Vec<FlagRow>) {
    let mut rows = Vec::new();
    let mut flag_rows = Vec::new();
    let mut section: Option<(String, Kind)> = None;
    let mut in_flags = false;
    let mut header: Option<Vec<String>> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(h) = line.strip_prefix("## ") {
            header = None;
            in_flags = h.trim() == "Flags";
            section = if h.trim() == "Top level" {
                Some((String::new(), Kind::Top))
            } else {
                spans(h).first().and_then(|s| {
                    if let Some(x) = s.strip_prefix("[[").and_then(|x| x.strip_suffix("]]")) {
                        Some((x.to_owned(), Kind::Array))
                    } else {
                        s.strip_prefix('[')
                            .and_then(|x| x.strip_suffix(']'))
                            .map(|x| (x.to_owned(), Kind::Table))
                    }
                })
            };
            continue;
        }
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let c = cells(line);
        let Some(h) = &header else {
            header = Some(c);
            continue;
        };
        if c.iter().all(|x| x.chars().all(|ch| ch == '-' || ch == ':')) {
            continue;
        }
        let col = |name: &str| {
            h.iter()
                .position(|x| x == name)
                .and_then(|i| c.get(i))
                .cloned()
                .unwrap_or_default()
        };
        if in_flags {
            flag_rows.push(FlagRow {
                flags: flags_in(&col("flag")),
                keys: col("key"),
                line: n,
            });
        } else if let Some((s, kind)) = &section {
            if h.first().map(String::as_str) == Some("key") {
                let key = spans(&col("key")).first().map(|k| (*k).to_owned());
                let key = key.unwrap_or_else(|| panic!("configuration.md:{n}: key not in `code`"));
                rows.push(Row {
                    section: s.clone(),
                    kind: *kind,
                    key,
                    ty: col("type"),
                    default: col("default"),
                    flag: col("flag"),
                    line: n,
                });
            }
        }
    }
    (rows, flag_rows)
}

/// The keys `Config::from_toml` accepts where `probe` puts an unknown key, read from the
/// error (`unknown field `zz_probe`, expected one of `a`, `b`…`); `None` when the place is
/// not a table of the configuration.
fn accepted(probe: &str) -> Option<Vec<String>> {
    let err = Config::from_toml(probe, "probe").err()?.to_string();
    if !err.contains("unknown field `zz_probe`") {
        return None;
    }
    let (_, tail) = err.split_once("expected")?;
    Some(spans(tail).into_iter().map(str::to_owned).collect())
}

/// Every (section, key) the code accepts, and the kind of each section.
fn code_keys() -> (BTreeSet<(String, String)>, BTreeMap<String, Kind>) {
    let top = accepted("zz_probe = 1\n").expect("the top level refuses unknown keys");
    assert!(
        top.len() > 10,
        "cannot read the accepted keys from the error: {top:?}"
    );
    let mut keys = BTreeSet::new();
    let mut sections = BTreeMap::new();
    for f in top {
        if let Some(sub) = accepted(&format!("[{f}]\nzz_probe = 1\n")) {
            sections.insert(f.clone(), Kind::Table);
            keys.extend(sub.into_iter().map(|k| (f.clone(), k)));
        } else if let Some(sub) = accepted(&format!("[[{f}]]\nzz_probe = 1\n")) {
            sections.insert(f.clone(), Kind::Array);
            keys.extend(sub.into_iter().map(|k| (f.clone(), k)));
        } else {
            keys.insert((String::new(), f));
        }
    }
    (keys, sections)
}

/// Values for the keys whose documented default is not a TOML value (`none`, `required`,
/// `first domain` …): each is parsed in its section, and must change the configuration.
const SAMPLES: &[(&str, &str, &str)] = &[
    ("", "trace_file", "\"sip_trace.jsonl\""),
    ("listen", "address", "\"udp:127.0.0.2:5060\""),
    ("listen", "advertise", "\"sip.example.com:5060\""),
    ("auth", "users_file", "\"users.htdigest\""),
    ("auth", "realm", "\"example.com\""),
    ("auth", "secret_file", "\"nonce.secret\""),
    ("upstream", "name", "\"asterisk\""),
    ("upstream", "targets", "[\"udp:127.0.0.1:5070\"]"),
    ("dispatch", "match", "\"+7495\""),
    ("dispatch", "upstream", "\"asterisk\""),
    ("registration", "uri", "\"sip:trunk@127.0.0.1:5090\""),
    ("registration", "password_file", "\"provider.password\""),
    ("registration", "auth_user", "\"trunk-auth\""),
    ("hep", "collector", "\"udp:127.0.0.1:9060\""),
    ("hep", "auth_key", "\"secret\""),
    ("hep", "node_name", "\"sip-proxy-1\""),
    ("metrics", "listen", "\"127.0.0.1:9090\""),
    ("storage", "location_db_mode", "1"),
    ("storage", "dialog_db_mode", "3"),
    ("redis", "url", "\"redis://127.0.0.1:6379\""),
];

fn sample(section: &str, key: &str) -> Option<&'static str> {
    SAMPLES
        .iter()
        .find(|(s, k, _)| *s == section && *k == key)
        .map(|(_, _, v)| *v)
}

/// The TOML value a row documents as its default, if the default is one.
fn default_value(row: &Row) -> Option<String> {
    let d = row.default.trim();
    if !d.starts_with('`') {
        return None;
    }
    let v = spans(d).first()?.to_string();
    toml::from_str::<toml::Table>(&format!("v = {v}")).ok()?;
    Some(v)
}

fn value_type_matches(ty: &str, value: &str) -> bool {
    let t: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
    let v = &t["v"];
    let word = ty.split_whitespace().next().unwrap_or("");
    match word {
        "integer" => v.is_integer(),
        "boolean" => v.is_bool(),
        "string" => v.is_str(),
        "array" => {
            let of = ty.split_whitespace().nth(2).unwrap_or("");
            v.as_array().is_some_and(|a| {
                a.iter().all(|e| match of {
                    "strings" => e.is_str(),
                    "integers" => e.is_integer(),
                    _ => false,
                })
            })
        }
        _ => false,
    }
}

/// The TOML of one section holding `lines`.
fn in_section(row: &Row, lines: &[String]) -> String {
    let head = match row.kind {
        Kind::Top => String::new(),
        Kind::Table => format!("[{}]\n", row.section),
        Kind::Array => format!("[[{}]]\n", row.section),
    };
    head + &lines.join("\n") + "\n"
}

fn doc() -> (Vec<Row>, Vec<FlagRow>) {
    let (rows, flags) = parse_doc(&read("docs/configuration.md"));
    assert!(
        rows.len() > 40,
        "docs/configuration.md: only {} key rows found",
        rows.len()
    );
    (rows, flags)
}

#[test]
fn every_key_is_documented() {
    let (rows, _) = doc();
    let (code, sections) = code_keys();
    let mut documented = BTreeSet::new();
    for r in &rows {
        assert!(
            documented.insert((r.section.clone(), r.key.clone())),
            "configuration.md:{}: `{}` documented twice in `{}`",
            r.line,
            r.key,
            r.section
        );
        if r.kind != Kind::Top {
            assert_eq!(
                sections.get(&r.section),
                Some(&r.kind),
                "configuration.md:{}: section `{}` is not a {:?} of the configuration",
                r.line,
                r.section,
                r.kind
            );
        }
    }
    let show = |v: Vec<&(String, String)>| {
        v.iter()
            .map(|(s, k)| {
                if s.is_empty() {
                    k.clone()
                } else {
                    format!("{s}.{k}")
                }
            })
            .collect::<Vec<_>>()
    };
    let undocumented = show(code.difference(&documented).collect());
    let unknown = show(documented.difference(&code).collect());
    assert!(
        undocumented.is_empty(),
        "keys the configuration accepts without a row in docs/configuration.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md documents that the configuration refuses: {unknown:?}"
    );
}

#[test]
fn documented_defaults_types_and_samples_hold() {
    let (rows, _) = doc();
    let defaults = Config::from_toml("", "defaults").unwrap().finish().unwrap();
    for r in &rows {
        let at = format!("configuration.md:{} ({}.{})", r.line, r.section, r.key);
        // The keys without a default in their array-of-tables section.
        let required: Vec<String> = rows
            .iter()
            .filter(|o| o.section == r.section && o.key != r.key && o.default == "required")
            .map(|o| {
                let v = sample(&o.section, &o.key)
                    .unwrap_or_else(|| panic!("{at}: no sample for required {}", o.key));
                format!("{} = {v}", o.key)
            })
            .collect();
        let with = |value: &str| {
            let mut lines = required.clone();
            lines.push(format!("{} = {value}", r.key));
            in_section(r, &lines)
        };
        let base = in_section(r, &required);
        let parse = |t: &str| {
            Config::from_toml(t, "row").unwrap_or_else(|e| panic!("{at}: `{t}` refused: {e}"))
        };
        if let Some(v) = default_value(r) {
            assert!(
                value_type_matches(&r.ty, &v),
                "{at}: default `{v}` is not a {}",
                r.ty
            );
            if r.kind == Kind::Array {
                assert_eq!(
                    parse(&with(&v)),
                    parse(&base),
                    "{at}: the default is not `{v}`"
                );
            } else {
                let c = parse(&with(&v))
                    .finish()
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(c, defaults, "{at}: the default is not `{v}`");
            }
        } else {
            let v = sample(&r.section, &r.key).unwrap_or_else(|| {
                panic!(
                    "{at}: the default `{}` is no TOML value: add a sample to SAMPLES",
                    r.default
                )
            });
            assert!(
                value_type_matches(&r.ty, v),
                "{at}: `{v}` is not a {}",
                r.ty
            );
            let c = parse(&with(v));
            if r.default != "required" {
                assert_ne!(c, parse(&base), "{at}: setting it to {v} changes nothing");
            }
        }
    }
}

#[test]
fn flags_match_sip_proxy_run() {
    let (rows, flag_rows) = doc();
    let cmd = RunArgs::augment_args(clap::Command::new("run"));
    let mut code = BTreeSet::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            code.insert(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            code.insert(format!("-{s}"));
        }
    }
    assert!(code.contains("--listen") && code.contains("-v"), "{code:?}");
    let table: BTreeSet<String> = flag_rows.iter().flat_map(|r| r.flags.clone()).collect();
    let missing: Vec<_> = code.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "flags of `sip-proxy run` not in the Flags table: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "flags in the Flags table that `run` does not have: {unknown:?}"
    );
    // The flag column of the key tables names real flags…
    for r in &rows {
        for f in flags_in(&r.flag) {
            assert!(
                code.contains(&f),
                "configuration.md:{}: no flag {f}",
                r.line
            );
        }
    }
    // …and each flag row's keys exist and name the flag back.
    for fr in &flag_rows {
        let flag = fr
            .flags
            .first()
            .unwrap_or_else(|| panic!("configuration.md:{}: no flag", fr.line));
        for span in spans(&fr.keys) {
            let (section, key) = match span.split_once(' ') {
                Some((s, k)) => (s.trim_matches(['[', ']']), Some(k)),
                None if span.starts_with('[') => (span.trim_matches(['[', ']']), None),
                None => match span.split_once('.') {
                    Some((s, k)) => (s, Some(k)),
                    None => ("", Some(span)),
                },
            };
            let in_section: Vec<&Row> = rows.iter().filter(|r| r.section == section).collect();
            assert!(
                !in_section.is_empty(),
                "configuration.md:{}: no section `{section}`",
                fr.line
            );
            if let Some(k) = key {
                let row = in_section
                    .iter()
                    .find(|r| r.key == k)
                    .unwrap_or_else(|| panic!("configuration.md:{}: no key `{span}`", fr.line));
                assert!(
                    flags_in(&row.flag).contains(flag),
                    "configuration.md:{}: the row of `{span}` does not name {flag}",
                    row.line
                );
            }
        }
    }
}

#[test]
fn example_shows_every_key_and_passes_check() {
    let (rows, _) = doc();
    let example = read("proxy.example.toml");
    let mut section = String::new();
    let mut shown = BTreeSet::new();
    for line in example.lines() {
        let l = line.trim_start_matches('#').trim();
        if let Some(h) = l.strip_prefix('[') {
            if let Some(end) = h.find(']') {
                section = h[..end].trim_matches(['[', ']']).to_owned();
                continue;
            }
        }
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim();
            if !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            {
                shown.insert((section.clone(), k.to_owned()));
            }
        }
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !shown.contains(&(r.section.clone(), r.key.clone())))
        .map(|r| format!("{}.{}", r.section, r.key))
        .collect();
    assert!(
        missing.is_empty(),
        "proxy.example.toml does not show: {missing:?}"
    );

    let path = root().join("proxy.example.toml");
    Config::from_file(&path)
        .and_then(Config::finish)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_sip-proxy"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": ok ("),
        "sip-proxy check proxy.example.toml: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reports_line_and_column_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("sip-proxy-config-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "domains = [\"example.com\"]\n[auth]\nban_afterr = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sip-proxy"))
        .arg("check")
        .arg("--config")
        .arg(&f)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.toml:3:1: unknown field `ban_afterr`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_parser_of_this_test_reads_what_it_should() {
    let doc = "## Top level\n\n| key | type | default | flag | meaning |\n|---|---|---|---|---|\n\
               | `log` | string | `\"info\"` | `-v` / `-q` | x \\| y |\n\n\
               ## `[[upstream]]`: sets\n\n| key | type | default | flag | meaning |\n|---|---|---|---|---|\n\
               | `name` | string | required | | the name |\n\n## Flags\n\n| flag | key | notes |\n|---|---|---|\n\
               | `--listen udp:IP:PORT` / `tcp:IP:PORT` | `[[listen]] address` | |\n";
    let (rows, flags) = parse_doc(doc);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].section.as_str(), rows[0].kind, rows[0].key.as_str()),
        ("", Kind::Top, "log")
    );
    assert_eq!(default_value(&rows[0]).as_deref(), Some("\"info\""));
    assert_eq!(flags_in(&rows[0].flag), ["-v", "-q"]);
    assert_eq!(
        (rows[1].section.as_str(), rows[1].kind),
        ("upstream", Kind::Array)
    );
    assert_eq!(default_value(&rows[1]), None);
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].flags, ["--listen"]);
    assert!(value_type_matches("array of strings", "[\"a\"]"));
    assert!(!value_type_matches("array of integers", "[\"a\"]"));
    assert!(!value_type_matches("integer", "\"5\""));
}
