//! The one Lambda binary (`bootstrap`) every function of `template.yaml` runs.
//!
//! Which handler it runs is named by the `MB_FUNCTION` environment variable the template sets on
//! each function (`unread-count`, `usage-consumer`, ... — the names of
//! `meterbell::functions::FUNCTIONS`). One binary means one compile and one link for the whole
//! stack, so `sam build` is fast and cargo's own fingerprinting decides what is stale; each
//! function stays its own Lambda with its own IAM policy, environment and alarms.

use std::process::ExitCode;

use meterbell::functions::{by_binary, Handler, FUNCTIONS};

/// The environment variable naming the handler.
const SELECTOR: &str = "MB_FUNCTION";

/// `MB_FUNCTION`, or else the name the binary was started under (a symlink named after a
/// function works too, busybox style).
fn selected() -> Option<String> {
    std::env::var(SELECTOR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            let argv0 = std::env::args_os().next()?;
            let name = std::path::Path::new(&argv0)
                .file_name()?
                .to_str()?
                .to_owned();
            by_binary(&name).map(|_| name)
        })
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(name) = selected() else {
        eprintln!(
            "{SELECTOR} is not set; set it to one of: {}",
            FUNCTIONS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::FAILURE;
    };
    let result = match by_binary(&name) {
        Some(Handler::Http(handler)) => meterbell::platform::lambda::run_http(handler).await,
        Some(Handler::Sqs(handler)) => meterbell::platform::lambda::run_sqs(handler).await,
        Some(Handler::Schedule(handler)) => {
            meterbell::platform::lambda::run_schedule(handler).await
        }
        Some(Handler::Stream(handler)) => meterbell::platform::lambda::run_stream(handler).await,
        None => {
            eprintln!("{SELECTOR}={name:?} names no function of this binary");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
