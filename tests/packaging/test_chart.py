"""The Helm chart, rendered and linted with Helm's own engine (helm-python-sdk), its
manifests checked against the Kubernetes schemas (kubernetes-validate), its operator flags
against the binary's, and the plain manifests in deploy/ against the chart."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts" / "lib"))
import chart  # noqa: E402

KUBERNETES = "1.34.0"
# Kinds whose schema is not Kubernetes' own: the Prometheus Operator's, and ours (checked by
# the api crate's admission tests).
FOREIGN = {"ServiceMonitor", "LustreWorkspaceClass"}

CLASS_SPEC = {
    "subnetId": "subnet-0123456789abcdef0",
    "securityGroup": {"managed": True, "clientSecurityGroupIds": ["sg-0123456789abcdef0"]},
    "allowedDataRepositories": ["s3://ml-datasets/"],
}

# Every value combination that changes what is rendered.
COMBINATIONS = {
    "defaults": {},
    "single replica, no election": {"replicaCount": 1, "leaderElection": {"enabled": False}},
    "everything on": {
        "replicaCount": 3,
        "aws": {"region": "eu-west-1", "endpointUrl": "https://fsx.eu-west-1.amazonaws.com", "adaptiveRetry": True},
        "serviceAccount": {"roleArn": "arn:aws:iam::123456789012:role/lustre-operator", "annotations": {"team": "platform"}},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "defaultClass": {"create": True, "name": "standard", "spec": CLASS_SPEC},
        "podAnnotations": {"example.com/x": "y"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-cluster-critical",
        "logging": {"format": "text", "level": "debug"},
        "controller": {"watchNamespaces": ["ml", "team-b"]},
        "clusterId": "prod-eu1",
    },
    "bring your own service account, no service": {
        "serviceAccount": {"create": False, "name": "existing"},
        "metrics": {"service": {"enabled": False}},
        "podDisruptionBudget": {"enabled": False},
    },
}


def docs(values: dict) -> list[dict]:
    out = []
    for path, text in sorted(chart.render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


@pytest.mark.parametrize("name", COMBINATIONS)
def test_renders_and_is_schema_valid(name):
    objs = docs(COMBINATIONS[name])
    assert by_kind(objs, "Deployment"), name
    for obj in objs:
        if obj["kind"] in FOREIGN:
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_lints_clean(name):
    report = helm.lint(str(chart.CHART), COMBINATIONS[name], strict=True, kube_version="v1.34.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_the_schema_refuses_bad_values():
    c = helm.Chart.load(str(chart.CHART))
    for bad in [
        {"replicaCount": 2, "leaderElection": {"enabled": False}},
        {"replicaCount": 0},
        {"logging": {"format": "xml"}},
        {"serviceAccount": {"roleArn": "not-an-arn"}},
        {"aws": {"region": "mars"}},
        {"replcaCount": 2},
    ]:
        with pytest.raises(helm.HelmError):
            c.validate_schema(bad)


def test_the_container_is_locked_down():
    for name, values in COMBINATIONS.items():
        (deploy,) = by_kind(docs(values), "Deployment")
        pod = deploy["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        (c,) = pod["containers"]
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_rbac_has_no_secrets_and_leases_only_in_the_release_namespace():
    objs = docs({})
    (role,) = [r for r in by_kind(objs, "ClusterRole") if r["metadata"]["name"] == chart.RELEASE]
    for rule in role["rules"]:
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
        assert "*" not in rule["verbs"], rule
    (lease_role,) = by_kind(objs, "Role")
    assert lease_role["metadata"]["namespace"] == chart.NAMESPACE
    assert lease_role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}]
    assert not by_kind(docs(COMBINATIONS["single replica, no election"]), "Role")


def test_values_reach_the_objects():
    objs = docs(COMBINATIONS["everything on"])
    (sa,) = by_kind(objs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/lustre-operator"
    (cls,) = by_kind(objs, "LustreWorkspaceClass")
    assert cls["metadata"]["annotations"]["workspaces.lustre.dev/is-default-class"] == "true"
    # The default class admits only namespaces labelled for it, unless its spec says otherwise.
    assert cls["spec"] == {**CLASS_SPEC, "allowedNamespaces": {"matchLabels": {"workspaces.lustre.dev/enabled": "true"}}}
    for spec_extra, default, want in [
        ({"allowedNamespaces": {}}, None, {}),
        ({"allowedNamespaces": {"matchLabels": {"team": "ml"}}}, None, {"matchLabels": {"team": "ml"}}),
        ({}, {"allowedNamespaces": None}, None),
    ]:
        values = {"defaultClass": {"create": True, "spec": {**CLASS_SPEC, **spec_extra}, **(default or {})}}
        (c,) = by_kind(docs(values), "LustreWorkspaceClass")
        assert c["spec"].get("allowedNamespaces") == want, (spec_extra, default)
    (sm,) = by_kind(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    (deploy,) = by_kind(objs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--watch-namespaces=ml,team-b" in args and "--cluster-id=prod-eu1" in args
    assert "--aws-region=eu-west-1" in args and "--aws-adaptive-retry" in args and "--leader-election" in args
    assert deploy["spec"]["replicas"] == 3
    byo = docs(COMBINATIONS["bring your own service account, no service"])
    assert not by_kind(byo, "ServiceAccount") and not by_kind(byo, "Service") and not by_kind(byo, "PodDisruptionBudget")
    assert by_kind(byo, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"] == "existing"
    assert by_kind(byo, "ClusterRoleBinding")[0]["subjects"][0]["name"] == "existing"


def test_notes_tell_the_next_command():
    notes = chart.render({})["lustre-operator/templates/NOTES.txt"]
    assert "kubectl get lws -w" in notes and "deploy/iam/policy.json" in notes
    with_class = chart.render(COMBINATIONS["everything on"])["lustre-operator/templates/NOTES.txt"]
    assert "kubectl get lustreworkspaceclass standard" in with_class
    assert "No IAM role is set" not in with_class


def operator_help() -> str:
    binary = pathlib.Path(os.environ.get("LUSTRE_BIN_DIR", "")) / "lustre-operator"
    if not binary.is_file():
        pytest.fail(f"{binary} not found: set LUSTRE_BIN_DIR to the directory holding the built binary (scripts/test does)")
    return subprocess.run([str(binary), "run", "--help"], check=True, capture_output=True, text=True).stdout


def test_every_flag_the_chart_passes_exists_in_the_binary():
    help_text = operator_help()
    for name, values in COMBINATIONS.items():
        (deploy,) = by_kind(docs(values), "Deployment")
        args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "run"
        for arg in args[1:]:
            flag = arg.split("=", 1)[0]
            assert f"{flag} " in help_text or f"{flag}\n" in help_text or f"{flag} <" in help_text, (name, flag)


def test_plain_manifests_are_current_and_kustomize_builds_them():
    assert chart.PLAIN.read_text() == chart.plain_manifests(), "deploy/manifests is stale: run scripts/render-manifests"
    built = subprocess.run(["kubectl", "kustomize", str(chart.ROOT / "deploy")], check=True, capture_output=True, text=True).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built) if d)
    crds = len(list((chart.ROOT / "deploy" / "crds").glob("*.yaml")))
    assert crds == 5 and kinds.count("CustomResourceDefinition") == crds and "Deployment" in kinds and "Namespace" in kinds, kinds


def test_chart_crds_are_the_generated_ones():
    for crd in (chart.ROOT / "deploy" / "crds").glob("*.yaml"):
        assert (chart.CHART / "crds" / crd.name).read_text() == crd.read_text(), crd.name


KINDS = ["lustreworkspaces", "lustredatatasks", "lustreworkspacebackups", "lustreworkspacegrants"]


def test_tenants_get_their_kinds_but_not_their_status():
    objs = docs({})
    tenant = [r for r in by_kind(objs, "ClusterRole") if r["metadata"]["name"] != chart.RELEASE]
    labels = sorted(k for r in tenant for k in r["metadata"]["labels"] if k.startswith("rbac.authorization.k8s.io/aggregate-to-"))
    assert labels == [
        "rbac.authorization.k8s.io/aggregate-to-admin",
        "rbac.authorization.k8s.io/aggregate-to-edit",
        "rbac.authorization.k8s.io/aggregate-to-view",
    ]
    for role in tenant:
        for rule in role["rules"]:
            # Workspaces, data tasks, backups and grants, never their status subresources.
            assert rule["resources"] == KINDS, rule
    (policy,) = by_kind(objs, "ValidatingAdmissionPolicy")
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == [f"{k}/status" for k in KINDS]
    assert "system:serviceaccount:lustre-system:lustre-operator" in policy["spec"]["validations"][0]["expression"]
    (binding,) = by_kind(objs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert not by_kind(docs({"statusWriters": {"enforce": False}}), "ValidatingAdmissionPolicy")


def test_a_network_policy_admits_only_the_metrics_port():
    (policy,) = by_kind(docs({}), "NetworkPolicy")
    (deploy,) = by_kind(docs({}), "Deployment")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["metrics"]
    narrowed = {"metrics": {"networkPolicy": {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}}}
    (policy,) = by_kind(docs(narrowed), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == narrowed["metrics"]["networkPolicy"]["from"]
    assert not by_kind(docs({"metrics": {"networkPolicy": {"enabled": False}}}), "NetworkPolicy")


def test_pods_are_watched_only_when_idle_expiry_asks():
    def pod_rules(values):
        (role,) = [r for r in by_kind(docs(values), "ClusterRole") if r["metadata"]["name"] == chart.RELEASE]
        return [r for r in role["rules"] if "pods" in r["resources"]]

    def flag(values):
        (deployment,) = by_kind(docs(values), "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return [a for a in container["args"] if a.startswith("--watch-pods")]

    assert pod_rules({}) == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
    assert flag({}) == ["--watch-pods=true"]
    off = {"expiry": {"watchPods": False}}
    assert pod_rules(off) == [] and flag(off) == ["--watch-pods=false"]
