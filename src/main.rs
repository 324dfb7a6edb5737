//! The `sluice` binary: broker daemon and CLI.

fn main() {
    eprintln!("sluice: the broker is not built yet; see README.md");
    std::process::exit(2);
}
