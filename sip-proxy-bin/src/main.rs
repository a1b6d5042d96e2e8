//! `sip-proxy`: the reference SIP proxy of the Rust SIP server toolkit.
//!
//! Each subcommand lives in a module of its own; `main` only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod hep;
mod parse;
mod users;

/// Command line of the `sip-proxy` binary.
#[derive(Debug, Parser)]
#[command(
    name = "sip-proxy",
    version,
    about = "Reference SIP registrar and proxy built from the Rust SIP toolkit crates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registrar and proxy (on embedded defaults when given no configuration).
    Run(Box<sip_proxy::run::RunArgs>),
    /// Check a configuration file (unknown keys and bad values with line and column).
    Check(sip_proxy::run::CheckArgs),
    /// Parse SIP messages from files (or stdin) and print one JSON object per message.
    Parse(parse::ParseArgs),
    /// Encode, decode and receive HEP (Homer) capture packets.
    Hep(hep::HepArgs),
    /// Maintain the htdigest credentials file (add, remove, list users).
    Users(users::UsersArgs),
    /// Administer the running proxy over its control socket (bans, registrations, dialogs,
    /// upstreams, counters, reload).
    Ctl(sip_proxy::ctl::client::CtlArgs),
}

/// jemalloc returns memory freed after a burst to the system (see Cargo.toml).
#[cfg(unix)]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Purge freed pages from a background thread, so that memory goes back to the system
    // even when the proxy falls idle after a burst (decay needs allocator activity
    // otherwise).
    #[cfg(unix)]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => sip_proxy::run::run(&args),
        Command::Check(args) => sip_proxy::run::check(&args),
        Command::Parse(args) => parse::run(&args),
        Command::Hep(args) => hep::run(&args),
        Command::Users(args) => users::run(&args),
        Command::Ctl(args) => sip_proxy::ctl::client::run(&args),
    }
}
