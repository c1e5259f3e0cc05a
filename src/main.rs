//! The `scope-deck` binary: parse the command line and hand over to [`scope_deck::app::run`].

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    // `--version` names the optional features compiled in (NDI, JACK), so a pre-flight can tell
    // a build that lacks one.
    let version = scope_deck::app::preflight::version_text();
    let matches = scope_deck::cli::Cli::command()
        .version(version)
        .get_matches();
    let cli = scope_deck::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    scope_deck::app::run(cli)
}
