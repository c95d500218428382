//! The user guide's command outputs are real: this runs every command the guide shows, in
//! order, against the sandbox with the operator and real kubectl, and compares the output with
//! the guide's `<!-- output: NAME -->` blocks (ids, UIDs and ages normalised). With
//! `LUSTRE_UPDATE_GUIDE=1` (what `scripts/update-guide` sets) it rewrites the blocks instead.

mod real_cluster;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

/// Replaces what changes from run to run with stable stand-ins of the same length, so the
/// columns kubectl aligns stay aligned.
struct Normaliser {
    seen: BTreeMap<String, String>,
}

impl Normaliser {
    fn stable(&mut self, found: &str, prefix: &str, width: usize) -> String {
        let n = self.seen.len() + 1;
        self.seen
            .entry(found.to_string())
            .or_insert_with(|| format!("{prefix}{n:0>width$}"))
            .clone()
    }

    fn apply(&mut self, text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            let mut l = line.to_string();
            for (pat, prefix, width) in [
                (r"fs-[0-9a-f]{17}", "fs-", 17),
                (r"sg-[0-9a-f]{17}", "sg-", 17),
                (r"dra-[0-9a-f]{17}", "dra-", 17),
                (r"task-[0-9a-f]{17}", "task-", 17),
                (r"backup-[0-9a-f]{17}", "backup-", 17),
                // Times a run sets (readiness, idle clocks, deadlines), to the second.
                ("rfc3339", "2000-01-01T00:00:", 2),
                (
                    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                    "00000000-0000-0000-0000-",
                    12,
                ),
            ] {
                let re = regex_lite(pat);
                let mut rewritten = String::new();
                let mut last = 0;
                for (start, end) in re(&l) {
                    rewritten.push_str(&l[last..start]);
                    rewritten.push_str(&self.stable(&l[start..end], prefix, width));
                    last = end;
                }
                rewritten.push_str(&l[last..]);
                l = rewritten;
            }
            // Ages in the last column of kubectl tables.
            if let Some(pos) = l.rfind(' ')
                && l[pos + 1..]
                    .trim_end_matches(['s', 'm', 'h', 'd'])
                    .chars()
                    .all(|c| c.is_ascii_digit() || "smhd".contains(c))
                && l[pos + 1..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            {
                l = format!("{}{}", &l[..pos + 1], "12s");
            }
            out.push_str(l.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A tiny matcher for the fixed id shapes above (hex runs after a literal prefix, or a
/// UUID), so the test needs no regex dependency. Returns match spans.
fn regex_lite(pat: &str) -> impl Fn(&str) -> Vec<(usize, usize)> + '_ {
    move |s: &str| {
        let bytes = s.as_bytes();
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let mut spans = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let len = if pat == "rfc3339" {
                // A time to the second: dddd-dd-ddTdd:dd:dd.
                let shape = b"dddd-dd-ddTdd:dd:dd";
                (i + shape.len() <= bytes.len()
                    && shape.iter().zip(&bytes[i..]).all(|(want, b)| match want {
                        b'd' => b.is_ascii_digit(),
                        other => other == b,
                    }))
                .then_some(shape.len())
            } else if pat.starts_with('[') {
                // UUID: 8-4-4-4-12
                let shape = [8, 4, 4, 4, 12];
                let mut j = i;
                let mut ok = true;
                for (k, n) in shape.iter().enumerate() {
                    if j + n > bytes.len() || !bytes[j..j + n].iter().all(|b| hex(*b)) {
                        ok = false;
                        break;
                    }
                    j += n;
                    if k < 4 {
                        if bytes.get(j) != Some(&b'-') {
                            ok = false;
                            break;
                        }
                        j += 1;
                    }
                }
                ok.then_some(j - i)
            } else {
                let prefix = pat.split('[').next().unwrap_or_default();
                let n = 17;
                (s[i..].starts_with(prefix)
                    && i + prefix.len() + n <= bytes.len()
                    && bytes[i + prefix.len()..i + prefix.len() + n]
                        .iter()
                        .all(|b| hex(*b))
                    && bytes.get(i + prefix.len() + n).is_none_or(|b| !hex(*b)))
                .then_some(prefix.len() + n)
            };
            match len {
                Some(n) if i == 0 || !bytes[i - 1].is_ascii_alphanumeric() => {
                    spans.push((i, i + n));
                    i += n;
                }
                _ => i += 1,
            }
        }
        spans
    }
}

/// Replaces the block after `<!-- output: name -->` in the guide.
fn set_block(guide: &str, name: &str, text: &str) -> Option<String> {
    let marker = format!("<!-- output: {name} -->\n```\n");
    let start = guide.find(&marker)? + marker.len();
    let end = start + guide[start..].find("```\n")?;
    Some(format!("{}{}{}", &guide[..start], text, &guide[end..]))
}

fn block<'a>(guide: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("<!-- output: {name} -->\n```\n");
    let start = guide.find(&marker)? + marker.len();
    let end = start + guide[start..].find("```\n")?;
    Some(&guide[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_guide_shows_real_output() {
    let e = E2e::start(quick()).await;
    let examples = repo().join("deploy/examples");
    let ex = |f: &str| examples.join(f).to_string_lossy().into_owned();
    let mut norm = Normaliser {
        seen: BTreeMap::new(),
    };
    let mut outputs: Vec<(&str, String)> = Vec::new();
    let run = |args: Vec<String>| {
        let e = &e;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = e.kubectl(&refs, None).await;
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    outputs.push((
        "get-classes",
        run(s(&["get", "lustreworkspaceclasses"])).await,
    ));
    outputs.push((
        "apply",
        run(s(&[
            "apply",
            "-f",
            &ex("workspace-scratch.yaml"),
            "-f",
            &ex("workspace-persistent.yaml"),
        ]))
        .await,
    ));
    e.ok(&[
        "wait",
        "--for=condition=Ready",
        "lws",
        "--all",
        "-n",
        "ml",
        "--timeout=60s",
    ])
    .await;
    outputs.push(("get-lws", run(s(&["get", "lws", "-n", "ml"])).await));
    outputs.push(("get-pvc", run(s(&["get", "pvc", "-n", "ml"])).await));
    outputs.push((
        "conditions",
        run(s(&[
            "get",
            "lws",
            "train-data",
            "-n",
            "ml",
            "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}",
        ]))
        .await,
    ));
    let out = e
        .kubectl(
            &["apply", "-f", "-"],
            Some("apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata: {name: odd, namespace: ml}\nspec:\n  storageCapacityGiB: 3600\n  dataRepositories:\n  - {name: d, s3Path: ml-datasets/x, fileSystemPath: /d}\n"),
        )
        .await;
    outputs.push((
        "bad-spec",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
    outputs.push((
        "resize",
        run(s(&[
            "patch",
            "lws",
            "scratch",
            "-n",
            "ml",
            "--type",
            "merge",
            "-p",
            "{\"spec\":{\"storageCapacityGiB\":2400}}",
        ]))
        .await,
    ));
    e.wait_for("jsonpath={.status.storageCapacityGiB}=2400", "lws/scratch")
        .await;
    e.wait_for("condition=Ready", "lws/scratch").await;
    outputs.push((
        "get-lws-resized",
        run(s(&["get", "lws", "scratch", "-n", "ml"])).await,
    ));
    outputs.push((
        "delete",
        run(s(&[
            "delete",
            "lws",
            "scratch",
            "-n",
            "ml",
            "--wait",
            "--timeout=60s",
        ]))
        .await,
    ));
    // 7. Save your results before deleting (the unlinking slowed, so the finished export is
    // shown before the workspace is gone).
    outputs.push((
        "apply-save-results",
        run(s(&["apply", "-f", &ex("workspace-save-results.yaml")])).await,
    ));
    e.wait_for("condition=Ready", "lws/sweep").await;
    e.sim.set_timing(Timing {
        association_delete_ms: 5_000,
        ..quick()
    });
    e.ok(&["delete", "lws", "sweep", "-n", "ml", "--wait=false"])
        .await;
    e.wait_for("condition=DataExported", "lws/sweep").await;
    outputs.push((
        "get-lws-exported",
        run(s(&[
            "get",
            "lws",
            "sweep",
            "-n",
            "ml",
            "-o",
            "custom-columns=NAME:.metadata.name,PHASE:.status.phase,EXPORT:.status.conditions[?(@.type==\"DataExported\")].reason,FILES:.status.lastExport.succeededFiles,FAILED:.status.lastExport.failedFiles,TASK:.status.lastExport.taskId",
        ]))
        .await,
    ));
    outputs.push((
        "events-exported",
        run(s(&[
            "get",
            "events",
            "-n",
            "ml",
            "--field-selector",
            "reason=Exported",
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
        ]))
        .await,
    ));
    e.wait_for("delete", "lws/sweep").await;
    // 8. Let it go away by itself.
    e.ok(&["apply", "-f", &ex("workspace-expiring.yaml")]).await;
    e.wait_for("condition=Ready", "lws/hpo-sweep").await;
    outputs.push((
        "get-lws-expiring",
        run(s(&[
            "get",
            "lws",
            "hpo-sweep",
            "-n",
            "ml",
            "-o",
            "custom-columns=NAME:.metadata.name,PHASE:.status.phase,IDLE SINCE:.status.idleSince,EXPIRES:.status.expiresAt,WHY:.status.conditions[?(@.type==\"Expiring\")].reason",
        ]))
        .await,
    ));
    // 2. Choosing storage: an Intelligent-Tiering workspace, shown with its zone.
    outputs.push((
        "apply-tiering",
        run(s(&["apply", "-f", &ex("workspace-tiering.yaml")])).await,
    ));
    e.wait_for("condition=Ready", "lws/corpus").await;
    outputs.push((
        "get-lws-tiering",
        run(s(&[
            "get",
            "lws",
            "corpus",
            "-n",
            "ml",
            "-o",
            "custom-columns=NAME:.metadata.name,STORAGE:.spec.storageType,THROUGHPUT:.spec.throughputCapacity,METADATA IOPS:.status.metadataIops,ZONE:.status.availabilityZone,CLAIM:.status.claimName,READY:.status.conditions[?(@.type==\"Ready\")].status",
        ]))
        .await,
    ));
    outputs.push((
        "get-lws-wide",
        run(s(&["get", "lws", "corpus", "-n", "ml", "-o", "wide"])).await,
    ));
    // 9. Keep it in a backup, restore it later.
    e.ok(&["apply", "-f", &ex("workspace-checkpoints.yaml")])
        .await;
    e.wait_for("condition=Ready", "lws/checkpoints").await;
    outputs.push((
        "apply-backup",
        run(s(&["apply", "-f", &ex("backup-checkpoints.yaml")])).await,
    ));
    e.wait_for("condition=Ready", "lwb/checkpoints-nightly")
        .await;
    outputs.push(("get-lwb", run(s(&["get", "lwb", "-n", "ml"])).await));
    e.ok(&[
        "delete",
        "lws",
        "checkpoints",
        "-n",
        "ml",
        "--wait",
        "--timeout=60s",
    ])
    .await;
    outputs.push((
        "apply-restored",
        run(s(&["apply", "-f", &ex("workspace-restored.yaml")])).await,
    ));
    e.wait_for("condition=Ready", "lws/checkpoints-restored")
        .await;
    outputs.push((
        "get-lws-restored",
        run(s(&[
            "get",
            "lws",
            "checkpoints-restored",
            "-n",
            "ml",
            "-o",
            "custom-columns=NAME:.metadata.name,PHASE:.status.phase,FILE SYSTEM:.status.fileSystemId,CLAIM:.status.claimName,SOURCE:.spec.source.backupName,READY:.status.conditions[?(@.type==\"Ready\")].status",
        ]))
        .await,
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let path = repo().join("docs/user-guide.md");
    let mut guide = std::fs::read_to_string(&path).expect("docs/user-guide.md");
    let update = std::env::var("LUSTRE_UPDATE_GUIDE").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    let shown = outputs.len();
    for (name, text) in outputs {
        let text = norm.apply(&text);
        if update {
            guide = set_block(&guide, name, &text)
                .unwrap_or_else(|| panic!("no <!-- output: {name} --> block in the guide"));
        } else if block(&guide, name) != Some(text.as_str()) {
            stale.push(format!(
                "{name}:\n--- guide ---\n{}\n--- real ---\n{text}",
                block(&guide, name).unwrap_or("(missing)")
            ));
        }
    }
    if update {
        std::fs::write(&path, guide).expect("write the guide");
    }
    if stale.is_empty() {
        println!("user guide: {shown} command outputs are what the commands print");
    }
    assert!(
        stale.is_empty(),
        "docs/user-guide.md differs from what the commands print (scripts/update-guide rewrites it):\n{}",
        stale.join("\n")
    );
}
