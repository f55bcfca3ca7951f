"""terraform/ checked offline: fmt, init + validate of every module, a plan of the root
against an emulator, apply + destroy of environments/local against moto, checkov, and the
facts the product depends on. Each test works on a copy of terraform/ in a temp folder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest

from photocluster.config import Settings
from photocluster.local.aws import resource_names
from tests.helpers.procs import REPO
from tests.helpers.tools import checkov

pytestmark = pytest.mark.terraform

TERRAFORM = REPO / "terraform"
MIRROR = Path("/opt/tf-plugins")
MODULES = sorted(p.name for p in (TERRAFORM / "modules").iterdir() if p.is_dir())


def terraform(
    args: list[str], cwd: Path, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(cwd),
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": str(TERRAFORM / "terraformrc.offline"),
        "CHECKPOINT_DISABLE": "1",
    }
    result = subprocess.run(
        ["terraform", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"terraform {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


# The provider's HTTP client now and then loses a keep-alive connection to moto's
# development server mid-response; apply and destroy converge, so running them again
# finishes the job (as an operator would), while any other error fails at once.
TRANSIENT = ("use of closed network connection", "connection reset by peer")


def converge(args: list[str], cwd: Path) -> None:
    result = terraform(args, cwd, timeout=900, check=False)
    if result.returncode != 0 and any(t in result.stderr for t in TRANSIENT):
        result = terraform(args, cwd, timeout=900, check=False)
    assert result.returncode == 0, (
        f"terraform {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("terraform"), "terraform 1.11 is on every machine of this kind"
    assert MIRROR.is_dir(), "the provider mirror /opt/tf-plugins is on every machine"
    copy = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(
        TERRAFORM,
        copy,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", ".terraform.lock.hcl", "*.tfplan"
        ),
    )
    return copy


def test_fmt_is_clean(tree: Path) -> None:
    result = terraform(["fmt", "-check", "-recursive", "-diff"], tree, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("folder", [".", "environments/local", *[f"modules/{m}" for m in MODULES]])
def test_init_and_validate(tree: Path, folder: str) -> None:
    where = tree / folder
    terraform(["init", "-backend=false", "-input=false"], where)
    assert "The configuration is valid" in terraform(["validate", "-no-color"], where).stdout


# --------------------------------------------------------------------- the root's plan


@pytest.fixture(scope="module")
def plan(tree: Path, moto_url: str) -> dict[str, Any]:
    terraform(["init", "-backend=false", "-input=false"], tree)
    terraform(
        [
            "plan",
            "-input=false",
            "-var-file=terraform.tfvars.example",
            f"-var=aws_endpoint_url={moto_url}",
            "-out=plan.tfplan",
        ],
        tree,
    )
    return dict(json.loads(terraform(["show", "-json", "plan.tfplan"], tree).stdout))


def planned(plan: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """Planned values of every resource of a type, in any module."""
    found: list[dict[str, Any]] = []

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            if resource["type"] == resource_type:
                found.append({"address": resource["address"], **resource["values"]})
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan["planned_values"]["root_module"])
    return found


def test_efs_is_max_io_and_encrypted(plan: dict[str, Any]) -> None:
    (efs,) = planned(plan, "aws_efs_file_system")
    assert efs["performance_mode"] == "maxIO" and efs["encrypted"] is True
    (access_point,) = planned(plan, "aws_efs_access_point")
    assert access_point["posix_user"][0]["uid"] == 1000


def test_queue_delay_dlq_and_visibility(plan: dict[str, Any]) -> None:
    queues = {q["name"]: q for q in planned(plan, "aws_sqs_queue")}
    ingest, dlq = queues["photocluster-prod-ingest"], queues["photocluster-prod-ingest-dlq"]
    settings = Settings()
    assert ingest["delay_seconds"] == settings.queue_delay_s == 5
    assert ingest["visibility_timeout_seconds"] == 6 * 60 == settings.queue_visibility_s
    # The redrive policy embeds the DLQ's ARN, unknown until apply (the apply test reads it):
    # here, check that the configured value reaches the queue module.
    assert plan["variables"]["queue_max_receive_count"]["value"] == settings.queue_max_receive
    queue_call = plan["configuration"]["root_module"]["module_calls"]["queue"]
    assert queue_call["expressions"]["max_receive_count"]["references"] == [
        "var.queue_max_receive_count"
    ]
    assert dlq["message_retention_seconds"] == 1209600
    (alarm,) = planned(plan, "aws_cloudwatch_metric_alarm")
    assert alarm["dimensions"] == {"QueueName": "photocluster-prod-ingest-dlq"}


def test_provisioned_concurrency_and_autoscaling_on_every_alias(plan: dict[str, Any]) -> None:
    configs = planned(plan, "aws_lambda_provisioned_concurrency_config")
    assert sorted(
        (c["function_name"], c["qualifier"], c["provisioned_concurrent_executions"])
        for c in configs
    ) == [
        ("photocluster-prod-cluster-api", "live", 2),
        ("photocluster-prod-ingest", "live", 1),
        ("photocluster-prod-writer", "live", 2),
    ]
    targets = planned(plan, "aws_appautoscaling_target")
    lambda_targets = sorted(t["resource_id"] for t in targets if t["service_namespace"] == "lambda")
    assert lambda_targets == [
        f"function:photocluster-prod-{f}:live" for f in ("cluster-api", "ingest", "writer")
    ]
    policies = planned(plan, "aws_appautoscaling_policy")
    metrics = sorted(
        p["target_tracking_scaling_policy_configuration"][0]["predefined_metric_specification"][0][
            "predefined_metric_type"
        ]
        for p in policies
    )
    assert metrics == ["LambdaProvisionedConcurrencyUtilization"] * 3 + [
        "SageMakerVariantProvisionedConcurrencyUtilization"
    ]
    aliases = planned(plan, "aws_lambda_alias")
    assert len(aliases) == 3 and {a["name"] for a in aliases} == {"live"}


def test_functions_are_images_with_tracing_and_the_right_mounts(plan: dict[str, Any]) -> None:
    functions = {f["function_name"]: f for f in planned(plan, "aws_lambda_function")}
    assert set(functions) == {f"photocluster-prod-{f}" for f in ("ingest", "writer", "cluster-api")}
    for function in functions.values():
        assert function["package_type"] == "Image"
        assert function["tracing_config"][0]["mode"] == "Active"
    assert functions["photocluster-prod-writer"]["image_config"][0]["command"] == ["writer.handler"]
    assert functions["photocluster-prod-ingest"]["file_system_config"] == []
    for name in ("writer", "cluster-api"):
        assert (
            functions[f"photocluster-prod-{name}"]["file_system_config"][0]["local_mount_path"]
            == "/mnt/efs"
        )
    env = functions["photocluster-prod-cluster-api"]["environment"][0]["variables"]
    assert env["PHOTOCLUSTER_AUTH_MODE"] == "apigateway"
    (mapping,) = planned(plan, "aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["batch_size"] == 10


def test_sagemaker_serverless_config(plan: dict[str, Any]) -> None:
    (config,) = planned(plan, "aws_sagemaker_endpoint_configuration")
    serverless = config["production_variants"][0]["serverless_config"][0]
    assert (
        serverless["memory_size_in_mb"],
        serverless["max_concurrency"],
        serverless["provisioned_concurrency"],
    ) == (6144, 20, 2)
    (model,) = planned(plan, "aws_sagemaker_model")
    assert model["enable_network_isolation"] is True


def test_api_routes_and_authorizer(plan: dict[str, Any]) -> None:
    paths = {r["path_part"] for r in planned(plan, "aws_api_gateway_resource")}
    assert paths == {"health", "v1", "users", "{user_id}", "{proxy+}", "ingest"}
    (authorizer,) = planned(plan, "aws_api_gateway_authorizer")
    assert authorizer["type"] == "COGNITO_USER_POOLS"
    methods = {m["address"].rsplit(".", 1)[-1]: m for m in planned(plan, "aws_api_gateway_method")}
    assert methods["user_proxy"]["authorization"] == "COGNITO_USER_POOLS"
    assert methods["ingest"]["authorization"] == "AWS_IAM"
    assert methods["health"]["authorization"] == "NONE"
    integrations = {
        i["address"].rsplit(".", 1)[-1]: i for i in planned(plan, "aws_api_gateway_integration")
    }
    assert integrations["user_proxy"]["type"] == "AWS_PROXY"
    assert integrations["ingest"]["type"] == "AWS"
    assert "Action=SendMessage" in integrations["ingest"]["request_templates"]["application/json"]
    (settings,) = planned(plan, "aws_api_gateway_method_settings")
    assert settings["settings"][0]["throttling_rate_limit"] == 500
    (stage,) = planned(plan, "aws_api_gateway_stage")
    assert stage["xray_tracing_enabled"] is True and stage["access_log_settings"]


def test_bucket_is_private_encrypted_and_notifies_the_queue(plan: dict[str, Any]) -> None:
    (block,) = planned(plan, "aws_s3_bucket_public_access_block")
    assert all(
        block[k]
        for k in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    (sse,) = planned(plan, "aws_s3_bucket_server_side_encryption_configuration")
    assert (
        sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    )
    (notification,) = planned(plan, "aws_s3_bucket_notification")
    (queue,) = notification["queue"]  # every key under the prefix: ingest judges the suffix
    assert queue["filter_prefix"] == Settings().upload_prefix and not queue.get("filter_suffix")
    assert set(queue["events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_the_api_may_sign_uploads_and_delete_under_the_upload_prefix_only() -> None:
    (statement,) = [
        s for where, s in policy_statements() if s.get("sid") == "PresignUploadsAndDeleteThem"
    ]
    assert sorted(statement["actions"]) == ["s3:DeleteObject", "s3:PutObject"]
    assert statement["resources"] == ["${local.bucket_arn}/${var.upload_prefix}*"]


# --------------------------------------------------------------------- static IAM facts


def _unquote(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip('"')
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    return value


def policy_statements() -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every aws_iam_policy_document in terraform/ (dynamic ones too)."""
    found = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as handle:
            document = _unquote(hcl2.load(handle))
        for block in document.get("data", []):
            for name, body in block.get("aws_iam_policy_document", {}).items():
                statements = list(body.get("statement", []))
                for dynamic in body.get("dynamic", []):  # dynamic "statement" { content {...} }
                    statements += dynamic.get("statement", {}).get("content", [])
                found += [(f"{path.relative_to(TERRAFORM)}:{name}", s) for s in statements]
    return found


DATA_SERVICES = (
    "s3:",
    "sqs:",
    "elasticfilesystem:",
    "sagemaker:",
    "lambda:",
    "kms:",
    "ecr:Batch",
    "ecr:GetDownload",
    "logs:",
)


def test_no_wildcard_actions_and_no_wildcard_data_resources() -> None:
    statements = policy_statements()
    assert len(statements) > 15
    for where, statement in statements:
        if statement.get("effect", "Allow") != "Allow":
            continue  # Deny statements (TLS-only) may be broad on purpose
        actions = statement.get("actions", [])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (where, action)
        if any(a.startswith(DATA_SERVICES) for a in actions):
            assert "*" not in statement.get("resources", []), (where, statement)


def test_every_checkov_skip_says_why() -> None:
    skips = []
    for path in TERRAFORM.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                skips.append(line)
                assert re.search(r"checkov:skip=CKV2?_AWS_\d+: \S.{10,}", line), line
    assert skips


def test_terraform_defaults_match_the_local_runtime() -> None:
    with (TERRAFORM / "environments" / "local" / "variables.tf").open() as handle:
        variables = {
            k: v for block in _unquote(hcl2.load(handle))["variable"] for k, v in block.items()
        }
    settings = Settings()
    assert variables["name"]["default"] == settings.name
    assert variables["queue_delay_seconds"]["default"] == settings.queue_delay_s
    assert variables["queue_max_receive_count"]["default"] == settings.queue_max_receive
    assert 6 * variables["ingest_timeout_seconds"]["default"] == settings.queue_visibility_s
    with (TERRAFORM / "variables.tf").open() as handle:
        root = {k: v for block in _unquote(hcl2.load(handle))["variable"] for k, v in block.items()}
    assert root["upload_url_expiry_seconds"]["default"] == settings.upload_url_expiry_s
    assert root["queue_max_receive_count"]["default"] == settings.queue_max_receive


# --------------------------------------------------------------------- checkov


def test_checkov_has_no_failed_checks() -> None:
    summary, failed = checkov(TERRAFORM, "terraform")
    assert summary["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert summary["passed"] > 300


# --------------------------------------------------------------------- apply + destroy


@pytest.mark.slow
def test_local_environment_applies_to_moto_and_destroys(tree: Path, aws: str) -> None:
    where = tree / "environments" / "local"
    terraform(["init", "-backend=false", "-input=false"], where)
    converge(["apply", "-auto-approve", "-input=false", f"-var=endpoint={aws}"], where)
    outputs = {
        k: v["value"] for k, v in json.loads(terraform(["output", "-json"], where).stdout).items()
    }
    names = resource_names(Settings().name)  # what the local runtime's bootstrap uses
    assert outputs["bucket_name"] == names["bucket"]

    s3, sqs, efs = boto3.client("s3"), boto3.client("sqs"), boto3.client("efs")
    notification = s3.get_bucket_notification_configuration(Bucket=names["bucket"])
    (queue,) = notification["QueueConfigurations"]  # as the local runtime's bootstrap makes it
    assert queue["QueueArn"].endswith(names["queue"]) and queue["Id"] == "uploads-to-ingest"
    assert queue["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": Settings().upload_prefix}
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["DelaySeconds"] == "5" and attributes["VisibilityTimeout"] == "360"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5
    assert sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]
    (file_system,) = efs.describe_file_systems(FileSystemId=outputs["file_system_id"])[
        "FileSystems"
    ]
    assert file_system["PerformanceMode"] == "maxIO" and file_system["Encrypted"]
    assert efs.describe_access_points(FileSystemId=outputs["file_system_id"])["AccessPoints"]
    assert (
        len(efs.describe_mount_targets(FileSystemId=outputs["file_system_id"])["MountTargets"]) == 2
    )

    converge(["destroy", "-auto-approve", "-input=false", f"-var=endpoint={aws}"], where)
    assert names["bucket"] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not sqs.list_queues(QueueNamePrefix=names["queue"]).get("QueueUrls")
    assert efs.describe_file_systems()["FileSystems"] == []
