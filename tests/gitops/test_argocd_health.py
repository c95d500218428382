"""The Argo CD health check (deploy/argocd/health.lua) run by a real Lua interpreter (lupa)
against the statuses the operator writes, and the argocd-cm snippet carrying the same Lua."""

from __future__ import annotations

import pathlib

import lupa
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
LUA = (ROOT / "deploy" / "argocd" / "health.lua").read_text()


def health(obj: dict) -> dict:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(LUA)
    return {"status": result["status"], "message": result["message"]}


def workspace(generation=2, observed=2, ready=None, deleting=False):
    obj = {"apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace",
           "metadata": {"name": "w", "namespace": "ml", "generation": generation}}
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-11-25T12:00:00Z"
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": []}
        if ready:
            status, reason, message = ready
            obj["status"]["conditions"] = [
                {"type": "Ready", "status": status, "reason": reason, "message": message},
                {"type": "FileSystemReady", "status": status, "reason": reason, "message": message},
            ]
    return obj


@pytest.mark.parametrize("obj,status,fragment", [
    (workspace(ready=("True", "Ready", "claim w is bound")), "Healthy", "claim w is bound"),
    (workspace(ready=("False", "Creating", "file system fs-1 is CREATING")), "Progressing", "Creating"),
    (workspace(ready=("False", "Updating", "growing to 4800 GiB")), "Progressing", "Updating"),
    (workspace(ready=("False", "AwsRetrying", "throttled")), "Progressing", "AwsRetrying"),
    (workspace(ready=("False", "FileSystemFailed", "The KMS key is disabled")), "Degraded", "The KMS key is disabled"),
    (workspace(ready=("False", "InvalidSpec", "spec.storageCapacityGiB: above the class limit")), "Degraded", "InvalidSpec"),
    (workspace(ready=("False", "AccessDenied", "fsx:CreateFileSystem")), "Degraded", "AccessDenied"),
    (workspace(generation=3, observed=2, ready=("True", "Ready", "old")), "Progressing", "latest spec"),
    (workspace(observed=None), "Progressing", "latest spec"),
    (workspace(ready=None), "Progressing", "No Ready condition"),
    (workspace(deleting=True, ready=("False", "ClaimInUse", "pods use claim w: trainer")), "Progressing", "trainer"),
    (workspace(deleting=True, ready=("True", "Ready", "x")), "Progressing", "Deleting"),
])
def test_health(obj, status, fragment):
    h = health(obj)
    assert h["status"] == status, h
    assert fragment in h["message"], h


def test_the_argocd_cm_snippet_is_the_tested_lua():
    cm = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    key = "resource.customizations.health.workspaces.lustre.dev_LustreWorkspace"
    assert cm["data"][key].strip() == LUA.strip()


def test_the_reasons_it_calls_problems_exist():
    constants = (ROOT / "crates" / "api" / "src" / "constants.rs").read_text()
    for reason in ["InvalidSpec", "ClassNotFound", "FileSystemFailed", "DataRepositoryFailed",
                   "AwsRejected", "AccessDenied", "LimitExceeded", "AdoptionRefused"]:
        assert f'"{reason}"' in constants, reason
