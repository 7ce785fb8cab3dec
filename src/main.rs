//! The `obol` binary: parse, set up logging, run, map errors to exit codes. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use obol::cli::Cli;

fn main() -> ExitCode {
    // Usage errors are the user's fault: exit 1 (clap's own default would be 2, our "bug" code).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    obol::commands::init_logging(&cli.global);
    // A panic is a bug in obol: clap and anyhow errors are exit 1, a panic is exit 2.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("obol: internal error (a bug, please report it): {info}");
        std::process::exit(2);
    }));
    obol::daemon::tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(obol::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            obol::commands::report_error(&err);
            ExitCode::from(1)
        }
    }
}
