//! The `scope-deck` binary: parse the command line and hand over to [`scope_deck::app::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    scope_deck::app::run(scope_deck::cli::Cli::parse())
}
