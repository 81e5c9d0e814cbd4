//! The `tweetmeet` binary: everything lives in the `api` crate.

// mimalloc: with tens of thousands of live subscriptions, glibc's malloc kept
// about twice the resident memory per idle subscriber (see bench/).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match api::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // One line with the cause chain ("cannot connect to PostgreSQL at
        // db:5432: … Connection refused"), not a backtrace: what an operator
        // needs, whatever RUST_BACKTRACE says.
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
