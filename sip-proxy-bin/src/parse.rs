//! `sip-proxy parse`: print parsed SIP messages as JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `sip-proxy parse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// Also run the RFC 3261 validation a proxy applies before processing.
    #[arg(long)]
    validate: bool,
    /// Treat each input as a TCP/TLS byte stream holding several messages.
    #[arg(long)]
    stream: bool,
    /// Files to read; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs the subcommand.
pub(crate) fn run(args: &ParseArgs) -> ExitCode {
    let _ = (args.validate, args.stream, &args.files);
    eprintln!("sip-proxy parse: not implemented yet");
    ExitCode::FAILURE
}
