//! Writes `benches/REPORT.md`: ns/msg, MB/s, allocations/msg and the ratio to the fastest peer
//! for every implementation × corpus message × workload, with geometric means over the corpus.
//!
//! ```text
//! cargo run --release -p sip-benches --bin report [-- OPTIONS]
//! ```
//!
//! Options:
//! - `--criterion`: take ns/msg from criterion's `target/criterion/**/new/estimates.json`
//!   (run `cargo bench -p sip-benches --bench parsers` first) instead of the built-in loop;
//! - `--batch-ms N` (default 10) and `--batches N` (default 15): the built-in timing loop runs
//!   `N` rounds; each round runs one batch of about `batch-ms` of every implementation in turn
//!   (so load from elsewhere hits them alike), and the median batch of each is kept;
//! - `--out PATH` (default `benches/REPORT.md`), `--stdout` to print instead.
//!
//! Allocations come from the sibling `allocs` binary (counting allocator), which this program
//! (re)builds with cargo when run under `cargo run`, and runs; the timed runs here use the plain
//! system allocator.

// Statistics over counts and durations far below 2^52: the float casts are exact enough.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use core::hint::black_box;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip_benches::corpus::{self, Message};
use sip_benches::impls::{self, Impl, KNOWN_REJECTIONS, PEERS};

const WORKLOADS: [&str; 2] = ["parse", "proxy_fields"];

struct Args {
    criterion: bool,
    batch: Duration,
    batches: usize,
    out: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        criterion: false,
        batch: Duration::from_millis(10),
        batches: 15,
        out: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("REPORT.md")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--criterion" => a.criterion = true,
            "--batch-ms" => {
                a.batch = Duration::from_millis(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--batch-ms N"),
                );
            }
            "--batches" => a.batches = it.next().and_then(|v| v.parse().ok()).expect("--batches N"),
            "--out" => a.out = Some(PathBuf::from(it.next().expect("--out PATH"))),
            "--stdout" => a.out = None,
            "-h" | "--help" => {
                println!(
                    "report [--criterion] [--batch-ms N] [--batches N] [--out PATH | --stdout]\n\
                     Writes the parser benchmark report (see benches/README.md)."
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    a
}

/// Iterations of `f` that take about `batch` (after a warm-up that doubles the count until one
/// run takes 1 ms).
fn calibrate(f: &dyn Fn(), batch: Duration) -> u64 {
    let mut n: u64 = 1;
    let per_iter = loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let e = t.elapsed();
        if e >= Duration::from_millis(1) {
            break e.as_secs_f64() / n as f64;
        }
        n *= 2;
    };
    ((batch.as_secs_f64() / per_iter) as u64).max(1)
}

/// Median ns per call of each of `runs`, timed interleaved: every round runs one batch of each
/// implementation in turn, so a burst of load from elsewhere on the machine hits them alike and
/// the ratios between them stay fair.
fn time_interleaved(runs: &[Box<dyn Fn() + '_>], batch: Duration, batches: usize) -> Vec<f64> {
    let iters: Vec<u64> = runs.iter().map(|f| calibrate(f.as_ref(), batch)).collect();
    let mut samples = vec![Vec::with_capacity(batches); runs.len()];
    for _ in 0..batches {
        for ((f, &n), out) in runs.iter().zip(&iters).zip(&mut samples) {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            out.push(t.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("criterion")
}

/// Criterion's median ns/iteration for one benchmark, if it has been run.
fn criterion_ns(workload: &str, msg: &str, imp: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(format!("{workload}_{msg}"))
        .join(imp)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

#[derive(Clone, Copy)]
struct Allocs {
    allocations: u64,
    reallocations: u64,
    bytes: u64,
}

/// Runs the `allocs` binary and reads its counts. Under `cargo run` it is (re)built first with
/// the same profile and features as this binary, so its implementation list matches.
fn allocs() -> BTreeMap<(String, String, String), Allocs> {
    let exe = std::env::current_exe().expect("current_exe");
    let sibling = exe.with_file_name(format!("allocs{}", std::env::consts::EXE_SUFFIX));
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "sip-benches", "--bin", "allocs"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        if !cfg!(feature = "ours") {
            cmd.arg("--no-default-features");
        }
        let status = cmd.status().expect("run cargo build for the allocs binary");
        assert!(status.success(), "building the allocs binary failed");
    }
    let out = Command::new(&sibling)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", sibling.display()));
    assert!(out.status.success(), "allocs binary failed");
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let [imp, msg, workload, a, r, b] = f[..] {
            map.insert(
                (imp.to_owned(), msg.to_owned(), workload.to_owned()),
                Allocs {
                    allocations: a.parse().unwrap_or(0),
                    reallocations: r.parse().unwrap_or(0),
                    bytes: b.parse().unwrap_or(0),
                },
            );
        }
    }
    map
}

/// Versions of the measured crates, from the workspace's Cargo.lock.
fn locked_versions() -> BTreeMap<String, String> {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .unwrap_or_default();
    let mut map = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            map.insert(n, v.trim_matches('"').to_owned());
        }
    }
    map
}

fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn geomean(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs
        .into_iter()
        .fold((0.0, 0u32), |(s, n), x| (s + x.ln(), n + 1));
    (n > 0).then(|| (sum / f64::from(n)).exp())
}

struct Cell {
    ns: f64,
    ok: bool,
    /// `None` when the `allocs` binary did not report this implementation.
    allocs: Option<Allocs>,
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    let args = args();
    let messages = corpus::load();
    let impls = impls::all();
    let allocs = allocs();

    // (workload, message, impl) -> cell
    let mut cells: BTreeMap<(&str, &str, &str), Cell> = BTreeMap::new();
    for workload in WORKLOADS {
        for msg in &messages {
            for (imp, cell) in impls
                .iter()
                .zip(measure(&impls, msg, workload, &args, &allocs))
            {
                eprintln!(
                    "{workload:>12} {:<22} {:<14} {:>10} {}",
                    msg.name,
                    imp.name,
                    fmt_ns(cell.ns),
                    if cell.ok { "" } else { "REJECTED" }
                );
                cells.insert((workload, msg.name, imp.name), cell);
            }
        }
    }

    let md = render(&args, &messages, &impls, &cells);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &md).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            eprintln!("wrote {}", path.display());
            update_readme(&headline(&messages, &impls, &cells));
        }
        None => print!("{md}"),
    }
}

/// Measures every implementation on one message and workload.
fn measure(
    impls: &[Impl],
    msg: &Message,
    workload: &'static str,
    args: &Args,
    allocs: &BTreeMap<(String, String, String), Allocs>,
) -> Vec<Cell> {
    let bytes = &msg.bytes;
    let ok: Vec<bool> = impls
        .iter()
        .map(|imp| {
            if workload == "parse" {
                (imp.parse)(bytes)
            } else {
                (imp.proxy_fields)(bytes).is_ok()
            }
        })
        .collect();
    let from_criterion: Vec<Option<f64>> = impls
        .iter()
        .map(|imp| {
            if args.criterion {
                criterion_ns(workload, msg.name, imp.name)
            } else {
                None
            }
        })
        .collect();
    let timed = if from_criterion.iter().all(Option::is_some) {
        Vec::new()
    } else {
        let runs: Vec<Box<dyn Fn() + '_>> = impls
            .iter()
            .map(|imp| -> Box<dyn Fn() + '_> {
                if workload == "parse" {
                    let f = imp.parse;
                    Box::new(move || {
                        black_box(f(black_box(bytes)));
                    })
                } else {
                    let f = imp.proxy_fields;
                    Box::new(move || {
                        let _ = black_box(f(black_box(bytes)));
                    })
                }
            })
            .collect();
        time_interleaved(&runs, args.batch, args.batches)
    };
    impls
        .iter()
        .enumerate()
        .map(|(i, imp)| {
            let key = (
                imp.name.to_owned(),
                msg.name.to_owned(),
                workload.to_owned(),
            );
            Cell {
                ns: from_criterion[i].unwrap_or_else(|| timed[i]),
                ok: ok[i],
                allocs: allocs.get(&key).copied(),
            }
        })
        .collect()
}

fn render(
    args: &Args,
    messages: &[Message],
    impls: &[Impl],
    cells: &BTreeMap<(&str, &str, &str), Cell>,
) -> String {
    let versions = locked_versions();
    let version = |name: &str| versions.get(name).map_or("?", String::as_str).to_owned();
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# SIP parser benchmark report\n");
    let _ = writeln!(
        w,
        "Generated {} by `cargo run --release -p sip-benches{} --bin report` on {} ({} threads available). \
         Timing: {}. Allocations: counted with a counting global allocator (`allocs` binary), one \
         run per message after one warm-up run.\n",
        utc_now(),
        if cfg!(feature = "ours") {
            ""
        } else {
            " --no-default-features"
        },
        cpu_model(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        if args.criterion {
            "criterion medians (`target/criterion`), the built-in loop where missing".to_owned()
        } else {
            format!(
                "built-in loop, implementations interleaved batch by batch, median of {} batches of ~{} ms",
                args.batches,
                args.batch.as_millis()
            )
        },
    );
    let _ = writeln!(
        w,
        "Implementations: {}.\n",
        impls
            .iter()
            .map(|i| match i.name {
                "memchr-floor" => format!(
                    "`memchr-floor` (memchr {}, line count: the lower bound)",
                    version("memchr")
                ),
                "sip-parser" => "`sip-parser` (this workspace)".to_owned(),
                n => format!("`{n}` {}", version(n)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "Workloads: `parse` = bytes → the crate's message type; `proxy_fields` = parse, then read \
         method + Request-URI or status, top Via branch, Call-ID, CSeq, From tag, To tag, \
         Max-Forwards, first Route URI and Content-Length through the crate's typed accessors. \
         *vs fastest peer* = ns/msg divided by the fastest published peer's ns/msg on the same \
         message (lower is better); geometric means are over the messages the implementation \
         accepted.\n"
    );

    for workload in WORKLOADS {
        let _ = writeln!(w, "## `{workload}`: summary\n");
        let _ = writeln!(
            w,
            "| implementation | geomean ns/msg | geomean MB/s | allocs/msg (mean) | vs fastest peer (geomean) | rejected |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---|");
        for imp in impls {
            let mut ns = Vec::new();
            let mut mbs = Vec::new();
            let mut ratios = Vec::new();
            let mut alloc_sum = Some(0u64);
            let mut rejected = Vec::new();
            for msg in messages {
                let c = &cells[&(workload, msg.name, imp.name)];
                if !c.ok {
                    rejected.push(msg.name);
                    continue;
                }
                ns.push(c.ns);
                mbs.push(msg.bytes.len() as f64 / c.ns * 1000.0);
                alloc_sum = alloc_sum
                    .zip(c.allocs)
                    .map(|(s, a)| s + a.allocations + a.reallocations);
                if let Some(best) = fastest_peer(cells, workload, msg.name) {
                    ratios.push(c.ns / best.1);
                }
            }
            let n = ns.len().max(1) as f64;
            let _ = writeln!(
                w,
                "| `{}` | {} | {:.0} | {} | {} | {} |",
                imp.name,
                geomean(ns).map_or("-".to_owned(), fmt_ns),
                geomean(mbs).unwrap_or(0.0),
                alloc_sum.map_or("?".to_owned(), |s| format!("{:.1}", s as f64 / n)),
                geomean(ratios).map_or("-".to_owned(), |r| format!("{r:.2}×")),
                if rejected.is_empty() {
                    "-".to_owned()
                } else {
                    rejected.join(", ")
                },
            );
        }
        let _ = writeln!(w);

        let _ = writeln!(w, "## `{workload}`: per message (ns/msg · allocs/msg)\n");
        let _ = write!(w, "| message | bytes |");
        for imp in impls {
            let _ = write!(w, " `{}` |", imp.name);
        }
        let _ = writeln!(w, " fastest peer |");
        let _ = write!(w, "|---|---:|");
        for _ in impls {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w, "---|");
        for msg in messages {
            let _ = write!(w, "| {} | {} |", msg.name, msg.bytes.len());
            for imp in impls {
                let c = &cells[&(workload, msg.name, imp.name)];
                if c.ok {
                    let _ = write!(
                        w,
                        " {} · {} |",
                        fmt_ns(c.ns),
                        c.allocs
                            .map_or("?".to_owned(), |a| (a.allocations + a.reallocations)
                                .to_string())
                    );
                } else {
                    let _ = write!(w, " rejected |");
                }
            }
            let _ = writeln!(
                w,
                " {} |",
                fastest_peer(cells, workload, msg.name).map_or("-", |b| b.0)
            );
        }
        let _ = writeln!(w);
    }

    if impls.iter().any(|i| i.name == "sip-parser") {
        targets(w, messages, cells);
    }

    let _ = writeln!(w, "## Rejections\n");
    let _ = writeln!(
        w,
        "Every corpus message is valid RFC 3261 and is kept as it is; a message an implementation \
         rejects is left out of that implementation's means and out of the fastest-peer baseline \
         for that message.\n"
    );
    let mut any = false;
    for workload in WORKLOADS {
        for msg in messages {
            for imp in impls {
                if !cells[&(workload, msg.name, imp.name)].ok {
                    any = true;
                    let known = KNOWN_REJECTIONS
                        .iter()
                        .any(|&(i, m, _)| i == imp.name && m == msg.name);
                    let _ = writeln!(
                        w,
                        "- `{}` rejects `{}` ({workload}){}",
                        imp.name,
                        msg.name,
                        if known {
                            ""
                        } else {
                            " — not in KNOWN_REJECTIONS"
                        }
                    );
                }
            }
        }
    }
    if !any {
        let _ = writeln!(w, "None.");
    }
    let _ = writeln!(
        w,
        "\nAllocation counts include reallocations; bytes allocated per message, `proxy_fields`:\n"
    );
    let _ = write!(w, "| message |");
    for imp in impls {
        let _ = write!(w, " `{}` |", imp.name);
    }
    let _ = writeln!(w);
    let _ = write!(w, "|---|");
    for _ in impls {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w);
    for msg in messages {
        let _ = write!(w, "| {} |", msg.name);
        for imp in impls {
            let bytes = cells[&("proxy_fields", msg.name, imp.name)].allocs;
            let _ = write!(
                w,
                " {} |",
                bytes.map_or("?".to_owned(), |a| a.bytes.to_string())
            );
        }
        let _ = writeln!(w);
    }
    md
}

/// The fastest published peer on one message: (name, ns).
fn fastest_peer<'a>(
    cells: &'a BTreeMap<(&str, &str, &str), Cell>,
    workload: &str,
    msg: &str,
) -> Option<(&'a str, f64)> {
    cells
        .iter()
        .filter(|((wl, m, i), c)| *wl == workload && *m == msg && c.ok && PEERS.contains(i))
        .map(|((_, _, i), c)| (*i, c.ns))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// The issue's targets for `sip-parser`, checked against this run.
fn targets(w: &mut String, messages: &[Message], cells: &BTreeMap<(&str, &str, &str), Cell>) {
    let ours = |workload: &'static str| {
        messages
            .iter()
            .map(move |m| (m, &cells[&(workload, m.name, "sip-parser")]))
    };
    let speedup = geomean(
        ours("proxy_fields")
            .filter(|(_, c)| c.ok)
            .filter_map(|(m, c)| {
                fastest_peer(cells, "proxy_fields", m.name).map(|best| best.1 / c.ns)
            }),
    );
    let max_allocs = ours("proxy_fields")
        .map(|(_, c)| c.allocs.map(|a| a.allocations + a.reallocations))
        .try_fold(0u64, |acc, a| a.map(|a| acc.max(a)));
    let parse_gbs = geomean(
        ours("parse")
            .filter(|(_, c)| c.ok)
            .map(|(m, c)| m.bytes.len() as f64 / c.ns),
    );
    let all_ok = ours("parse").chain(ours("proxy_fields")).all(|(_, c)| c.ok);
    let mark = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(w, "## `sip-parser` against the targets of issue 3 §5\n");
    let _ = writeln!(w, "| target | this run | |");
    let _ = writeln!(w, "|---|---:|---|");
    if let Some(s) = speedup {
        let _ = writeln!(
            w,
            "| `proxy_fields` ≥ 5× faster than the fastest peer (geomean of per-message speedups) | {s:.2}× | {} |",
            mark(s >= 5.0)
        );
    }
    if let Some(a) = max_allocs {
        let _ = writeln!(
            w,
            "| ≤ 2 heap allocations per message on `proxy_fields` (worst message) | {a} | {} |",
            mark(a <= 2)
        );
    }
    if let Some(g) = parse_gbs {
        let _ = writeln!(
            w,
            "| `parse` ≥ 2 GB/s (geomean) | {g:.2} GB/s | {} |",
            mark(g >= 2.0)
        );
    }
    let _ = writeln!(
        w,
        "| every corpus message accepted | {} | {} |\n",
        if all_ok { "yes" } else { "no" },
        mark(all_ok)
    );
}

const FIGURES_START: &str = "<!-- figures:start (written by the report binary) -->";
const FIGURES_END: &str = "<!-- figures:end -->";

/// One table with the geometric means of both workloads, for `benches/README.md`.
fn headline(
    messages: &[Message],
    impls: &[Impl],
    cells: &BTreeMap<(&str, &str, &str), Cell>,
) -> String {
    let mut w = String::new();
    let _ = writeln!(
        w,
        "Last run: {}, {}, {} threads; geometric means over the corpus (over the messages an \
         implementation accepts).\n",
        utc_now(),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    let _ = writeln!(
        w,
        "| implementation | `parse` ns/msg | `parse` MB/s | `parse` allocs/msg | `proxy_fields` ns/msg | `proxy_fields` allocs/msg | `proxy_fields` vs fastest peer | rejected |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---|");
    for imp in impls {
        let stats = |workload: &'static str| {
            let accepted: Vec<_> = messages
                .iter()
                .map(|m| (m, &cells[&(workload, m.name, imp.name)]))
                .filter(|(_, c)| c.ok)
                .collect();
            let ns = geomean(accepted.iter().map(|(_, c)| c.ns));
            let mbs = geomean(
                accepted
                    .iter()
                    .map(|(m, c)| m.bytes.len() as f64 / c.ns * 1000.0),
            );
            let allocs = accepted
                .iter()
                .map(|(_, c)| c.allocs.map(|a| a.allocations + a.reallocations))
                .sum::<Option<u64>>()
                .map(|s| s as f64 / accepted.len().max(1) as f64);
            let ratio =
                geomean(accepted.iter().filter_map(|(m, c)| {
                    fastest_peer(cells, workload, m.name).map(|b| c.ns / b.1)
                }));
            (ns, mbs, allocs, ratio, messages.len() - accepted.len())
        };
        let (pns, pmbs, palloc, _, prej) = stats("parse");
        let (fns, _, falloc, fratio, frej) = stats("proxy_fields");
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            imp.name,
            pns.map_or("-".to_owned(), fmt_ns),
            pmbs.map_or("-".to_owned(), |v| format!("{v:.0}")),
            palloc.map_or("?".to_owned(), |v| format!("{v:.1}")),
            fns.map_or("-".to_owned(), fmt_ns),
            falloc.map_or("?".to_owned(), |v| format!("{v:.1}")),
            fratio.map_or("-".to_owned(), |r| format!("{r:.2}×")),
            prej.max(frej),
        );
    }
    w
}

/// Replaces the figures between the markers of `benches/README.md`, if both are there.
fn update_readme(figures: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let Ok(readme) = std::fs::read_to_string(&path) else {
        return;
    };
    let (Some(a), Some(b)) = (readme.find(FIGURES_START), readme.find(FIGURES_END)) else {
        return;
    };
    if a > b {
        return;
    }
    let updated = format!("{}{FIGURES_START}\n{figures}{}", &readme[..a], &readme[b..]);
    if std::fs::write(&path, updated).is_ok() {
        eprintln!("updated the figures in {}", path.display());
    }
}
