//! The `tweetmeet` binary: everything lives in the `api` crate.

// mimalloc: with tens of thousands of live subscriptions, glibc's malloc kept
// about twice the resident memory per idle subscriber (see bench/).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    api::cli::run().await
}
