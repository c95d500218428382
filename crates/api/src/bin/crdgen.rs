//! Writes the CRDs to directories (default `deploy/crds` and the Helm chart's
//! `charts/lustre-operator/crds`), or with `--check` fails when the files there differ from
//! what the types generate.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dirs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: crdgen [--check] [DIR ...]   (default: deploy/crds charts/lustre-operator/crds)"
                );
                return ExitCode::SUCCESS;
            }
            dir => dirs.push(PathBuf::from(dir)),
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from("deploy/crds"));
        dirs.push(PathBuf::from("charts/lustre-operator/crds"));
    }
    let mut stale = false;
    for dir in &dirs {
        for (name, yaml) in lustre_api::crd::rendered() {
            let path = dir.join(&name);
            if check {
                let current = std::fs::read_to_string(&path).unwrap_or_default();
                if current != yaml {
                    eprintln!(
                        "{} is stale: run `cargo run -p lustre-api --bin crdgen {}`",
                        path.display(),
                        dir.display()
                    );
                    stale = true;
                }
            } else {
                if let Err(e) =
                    std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &yaml))
                {
                    eprintln!("cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
        }
    }
    if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
