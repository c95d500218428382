//! Writes `docs/troubleshooting.md` and `docs/api-reference.md` from the API, or with
//! `--check` fails when the checked-in copies differ.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let docs = PathBuf::from("docs");
    let mut stale = false;
    for (name, text) in [
        ("troubleshooting.md", lustre_api::docs::troubleshooting()),
        ("api-reference.md", lustre_api::docs::api_reference()),
    ] {
        let path = docs.join(name);
        if check {
            if std::fs::read_to_string(&path).unwrap_or_default() != text {
                eprintln!(
                    "{} is stale: run `cargo run -p lustre-api --bin docgen`",
                    path.display()
                );
                stale = true;
            }
        } else if let Err(e) =
            std::fs::create_dir_all(&docs).and_then(|()| std::fs::write(&path, text))
        {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
