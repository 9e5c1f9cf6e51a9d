use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = gatewatch::cli::Cli::parse();
    gatewatch::cli::init_logging(&cli.log);
    match gatewatch::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
