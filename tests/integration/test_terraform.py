"""terraform/ checked offline: fmt, init + validate of every module, plans of the root
against an emulator (the prod and dev examples, an existing VPC), checkov, `make plan`,
`make costs`, and the facts the product depends on. Each test works on a copy of
terraform/ in a temp folder. The deploy path itself (apply and destroy against moto):
test_deploy.py."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import hcl2
import pytest

from photocluster.config import Settings
from photocluster.deploy import hcl
from photocluster.deploy.terraform import Terraform
from photocluster.errors import DeployError
from photocluster.ingest.objects import REJECTED_TAG
from tests.helpers.aws import TRANSIENT
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
            ".terraform", "*.tfstate*", ".terraform.lock.hcl", "*.tfplan", "backend.tf"
        ),
    )
    return copy


def test_fmt_is_clean(tree: Path) -> None:
    result = terraform(["fmt", "-check", "-recursive", "-diff"], tree, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("folder", [".", *[f"modules/{m}" for m in MODULES]])
def test_init_and_validate(tree: Path, folder: str) -> None:
    where = tree / folder
    terraform(["init", "-backend=false", "-input=false"], where)
    assert "The configuration is valid" in terraform(["validate", "-no-color"], where).stdout


# --------------------------------------------------------------------- the root's plan


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
IMAGES = {
    f"{name}_image_uri": f"{REGISTRY}/{name}:t1" for name in ("ingest", "cluster_api", "embedder")
}
PLACEHOLDERS = [f"-var={name}={uri}" for name, uri in IMAGES.items()]


def plan_of(tree: Path, endpoint: str, *args: str) -> dict[str, Any]:
    """``terraform plan`` of the root with these arguments, as JSON."""
    terraform(["init", "-backend=false", "-input=false"], tree)
    terraform(
        [
            "plan",
            "-input=false",
            f"-var=aws_endpoint_url={endpoint}",
            *PLACEHOLDERS,
            *args,
            "-out=plan.tfplan",
        ],
        tree,
    )
    return dict(json.loads(terraform(["show", "-json", "plan.tfplan"], tree).stdout))


@pytest.fixture(scope="module")
def plan(tree: Path, moto_url: str) -> dict[str, Any]:
    return plan_of(tree, moto_url, "-var-file=prod.tfvars.example")


def cluster_api_environment() -> dict[str, str]:
    """The cluster API function's environment as main.tf writes it (expressions as text):
    its values are unknown to a plan until the user pool exists (its issuer, its client)."""
    with (TERRAFORM / "main.tf").open() as handle:
        root = hcl.unquote(hcl2.load(handle))
    (api,) = [m["cluster_api"] for m in root["module"] if "cluster_api" in m]
    return dict(api["environment"])


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
    assert ingest["visibility_timeout_seconds"] == 6 * 300 == settings.queue_visibility_s
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
    assert cluster_api_environment()["PHOTOCLUSTER_AUTH_MODE"] == "apigateway"
    (mapping,) = planned(plan, "aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    settings = Settings()  # the local worker gathers its batches as the mapping does
    assert mapping["batch_size"] == settings.worker_batch_size == 10
    window = mapping["maximum_batching_window_in_seconds"]
    assert window == settings.worker_batching_window_s == 2


def test_sagemaker_serverless_config(plan: dict[str, Any]) -> None:
    (config,) = planned(plan, "aws_sagemaker_endpoint_configuration")
    serverless = config["production_variants"][0]["serverless_config"][0]
    assert (
        serverless["memory_size_in_mb"],
        serverless["max_concurrency"],
        serverless["provisioned_concurrency"],
    ) == (6144, 20, 2)
    # A new image is a new configuration and UpdateEndpoint takes its provisioned
    # concurrency: the floor is in it, so an update never drops the endpoint to none. The
    # scalable target names the endpoint and its variant, not the configuration, so it
    # stays (a model change is what SageMaker lets an autoscaled variant do), and its
    # maximum is one SageMaker accepts.
    targets = planned(plan, "aws_appautoscaling_target")
    (target,) = [t for t in targets if t["service_namespace"] == "sagemaker"]
    assert target["resource_id"] == "endpoint/photocluster-prod-embedder/variant/AllTraffic"
    assert (target["min_capacity"], target["max_capacity"]) == (2, 10)
    assert target["max_capacity"] <= serverless["max_concurrency"]


def test_the_serverless_model_asks_for_no_network_isolation(plan: dict[str, Any]) -> None:
    # Serverless endpoints do not support network isolation: with it, the apply failed.
    (model,) = planned(plan, "aws_sagemaker_model")
    assert not model.get("enable_network_isolation")


def test_each_embedder_image_is_a_model_of_its_own_created_before_the_old_goes(
    plan: dict[str, Any],
) -> None:
    # A fixed name made every redeploy ask SageMaker for a second model under the first's
    # name ("create replacement then destroy"), which it refuses.
    (model,) = planned(plan, "aws_sagemaker_model")
    digest = hashlib.sha256(IMAGES["embedder_image_uri"].encode()).hexdigest()[:12]
    assert model["name"] == f"photocluster-prod-embedder-{digest}"
    embedder = hcl.load(TERRAFORM / "modules" / "embedder" / "main.tf")
    (resource,) = [
        r["aws_sagemaker_model"]["this"] for r in embedder["resource"] if "aws_sagemaker_model" in r
    ]
    assert resource["lifecycle"][0]["create_before_destroy"] is True


def test_no_function_reserves_concurrency(plan: dict[str, Any]) -> None:
    # 100 each (300 in all) failed in new accounts, whose quota is small and of which
    # Lambda keeps 100 unreserved.
    functions = planned(plan, "aws_lambda_function")
    assert [f["reserved_concurrent_executions"] for f in functions] == [-1, -1, -1]


def test_autoscaling_owns_the_provisioned_concurrency_once_it_exists() -> None:
    # Otherwise every apply reset each alias to its minimum, fighting Application Auto Scaling.
    service = hcl.load(TERRAFORM / "modules" / "lambda_service" / "main.tf")
    (config,) = [
        r["aws_lambda_provisioned_concurrency_config"]["live"]
        for r in service["resource"]
        if "aws_lambda_provisioned_concurrency_config" in r
    ]
    assert config["lifecycle"][0]["ignore_changes"] == ["provisioned_concurrent_executions"]


def test_api_gateway_takes_its_logging_role_only_once_the_role_has_its_policy() -> None:
    logging_tf = hcl.load(TERRAFORM / "modules" / "api" / "logging.tf")
    (account,) = [
        r["aws_api_gateway_account"]["this"]
        for r in logging_tf["resource"]
        if "aws_api_gateway_account" in r
    ]
    assert "${aws_iam_role_policy.account_logging}" in account["depends_on"]


def test_idle_by_default_flow_logs_of_rejects_and_a_month_of_logs(tree: Path) -> None:
    defaults = hcl.variable_defaults(TERRAFORM / "variables.tf")
    assert defaults["provisioned_concurrency"] == {"ingest": 0, "writer": 0, "cluster_api": 0}
    assert defaults["embedder_provisioned_concurrency"] == 0
    assert defaults["log_retention_days"] == 30
    assert defaults["flow_log_traffic_type"] == "REJECT"


def test_dev_example_an_existing_vpc_reaches_s3_and_efs_is_general_purpose_elastic(
    tree: Path, moto_url: str
) -> None:
    plan = plan_of(
        tree,
        moto_url,
        "-var-file=dev.tfvars.example",
        "-var=create_vpc=false",
        "-var=vpc_id=vpc-0123456789abcdef0",
        '-var=subnet_ids=["subnet-0123456789abcdef0","subnet-0fedcba987654321a"]',
        '-var=route_table_ids=["rtb-0123456789abcdef0"]',
    )
    (endpoint,) = planned(plan, "aws_vpc_endpoint")
    assert endpoint["vpc_endpoint_type"] == "Gateway" and endpoint["service_name"].endswith(".s3")
    assert endpoint["route_table_ids"] == ["rtb-0123456789abcdef0"]
    assert planned(plan, "aws_vpc_security_group_egress_rule")  # 443 to it, 2049 to EFS
    (efs,) = planned(plan, "aws_efs_file_system")
    assert (efs["performance_mode"], efs["throughput_mode"]) == ("generalPurpose", "elastic")
    assert planned(plan, "aws_lambda_provisioned_concurrency_config") == []
    (model,) = planned(plan, "aws_sagemaker_model")
    assert model["name"].startswith("photocluster-dev-embedder-")


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        (
            ["-var=create_vpc=false", "-var=vpc_id=vpc-1", '-var=subnet_ids=["subnet-1"]'],
            "reach S3",
        ),
        (["-var=efs_throughput_mode=elastic"], "generalPurpose"),
        (["-var=log_retention_days=42"], "CloudWatch Logs accepts"),
        (
            ["-var=user_pool_arn=arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_a"],
            "name its app clients",
        ),
        # each name valid alone, the embedder's prefix 44 characters (SageMaker takes 37)
        (["-var=project=abcdefghijklmnopqrstu", "-var=environment=staging2prod"], "at most 26"),
        # the uploads bucket's name: "<name>-uploads-<account>-<region>"
        (["-var=account_id=12345"], "12 digits"),
        (["-var=region=eu-somewhere-far-1"], "at most 14 characters"),
        # autoscaling past what SageMaker or the account allows fails only when it scales
        (["-var=embedder_autoscaling_max=30"], "at most embedder_max_concurrency"),
        (
            ["-var=embedder_max_concurrency=20", "-var=sagemaker_serverless_concurrency_quota=10"],
            "at most sagemaker_serverless_concurrency_quota",
        ),
        (["-var=lambda_concurrency_quota=150"], "at most lambda_concurrency_quota - 100"),
        (["-var=embedder_memory_mb=3000"], "one of SageMaker Serverless's sizes"),
        # a batch that meets a cold embedder must not run out of time
        (["-var=ingest_timeout_seconds=60"], "at least 250 + writer_timeout_seconds"),
    ],
)
def test_configurations_that_cannot_work_are_refused_at_plan(
    tree: Path, variables: list[str], says: str
) -> None:
    terraform(["init", "-backend=false", "-input=false"], tree)
    result = terraform(
        [
            "plan",
            "-input=false",
            "-no-color",  # a message's wrapped lines join without the frame's characters
            "-var-file=prod.tfvars.example",
            *PLACEHOLDERS,
            *variables,
            "-var=aws_endpoint_url=http://127.0.0.1:9",
        ],
        tree,
        check=False,
    )
    assert result.returncode != 0 and says in " ".join(result.stderr.split()), result.stderr


def test_make_plan_plans_the_dev_example_with_no_aws_account() -> None:
    done = subprocess.run(
        ["make", "plan"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "planning dev.tfvars.example" in done.stdout and "Plan:" in done.stdout


def test_tokens_live_an_hour_and_the_app_knows_their_issuer_and_clients(
    plan: dict[str, Any],
) -> None:
    """The app refuses tokens valid for more than a day and checks issuer and audience
    (a REST API's Cognito authorizer takes any app client of the pool)."""
    (client,) = planned(plan, "aws_cognito_user_pool_client")
    assert (client["id_token_validity"], client["access_token_validity"]) == (60, 60)
    units = client["token_validity_units"][0]
    assert (units["id_token"], units["access_token"]) == ("minutes", "minutes")
    assert Settings().jwt_max_lifetime_s >= 3600
    environment = cluster_api_environment()
    assert environment["PHOTOCLUSTER_JWT_ISSUER"] == "${module.api.token_issuer}"
    assert environment["PHOTOCLUSTER_JWT_AUDIENCE"] == '${join(",", module.api.app_client_ids)}'


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


def test_api_gateways_own_refusals_use_the_apps_error_format(plan: dict[str, Any]) -> None:
    responses = {r["response_type"]: r for r in planned(plan, "aws_api_gateway_gateway_response")}
    assert set(responses) == {
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "THROTTLED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    for kind, response in responses.items():
        template = response["response_templates"]["application/json"]
        body = json.loads(template.replace("$context.error.messageString", '"Unauthorized"'))
        assert set(body) == {"error"} and body["error"]["message"] == "Unauthorized", kind
        assert re.fullmatch(r"[a-z_]+", body["error"]["code"]), kind
    assert responses["UNAUTHORIZED"]["status_code"] == "401"
    # the prod example's one web origin: a browser app reads API Gateway's refusals too
    cors = {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'",
        "gatewayresponse.header.Access-Control-Expose-Headers": "'ETag,Server-Timing,Location'",
        "gatewayresponse.header.Vary": "'Origin'",
    }
    assert responses["UNAUTHORIZED"]["response_parameters"] == {
        "gatewayresponse.header.WWW-Authenticate": "'Bearer'",
        **cors,
    }
    for kind in ("ACCESS_DENIED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"):
        assert responses[kind]["response_parameters"] == cors, kind


def test_the_queue_takes_events_only_from_this_accounts_uploads_bucket() -> None:
    (statement,) = [s for _, s in policy_statements() if s.get("sid") == "UploadsBucketSendsEvents"]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions["aws:SourceArn"] == ("ArnEquals", ["${var.source_bucket_arn}"])
    assert conditions["aws:SourceAccount"] == (
        "StringEquals",
        ['${split(":", aws_sqs_queue.ingest.arn)[4]}'],
    )


def test_cors_origins_reach_the_app_and_open_a_preflight_route(plan: dict[str, Any]) -> None:
    methods = {m["address"]: m for m in planned(plan, "aws_api_gateway_method")}
    (preflight,) = [m for address, m in methods.items() if "preflight" in address]
    assert (preflight["http_method"], preflight["authorization"]) == ("OPTIONS", "NONE")
    origins = cluster_api_environment()["PHOTOCLUSTER_CORS_ORIGINS"]
    assert origins == '${join(",", var.api_cors_origins)}'
    assert plan["variables"]["api_cors_origins"]["value"] == ["https://app.example.com"]


def test_the_uploads_bucket_is_named_for_its_account_and_region(plan: dict[str, Any]) -> None:
    """S3's bucket names are global: "photocluster-prod-uploads" is taken by whoever deploys
    it first anywhere (BucketAlreadyExists). The account (here moto's) and the region make
    the name this stack's own; a plan with no AWS account names one with ``account_id``."""
    (bucket,) = planned(plan, "aws_s3_bucket")
    region = plan["variables"]["region"]["value"]
    assert bucket["bucket"] == f"photocluster-prod-uploads-123456789012-{region}"


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


def test_uploads_rejected_for_good_expire_by_the_tag_ingest_gives_them(
    plan: dict[str, Any],
) -> None:
    (lifecycle,) = planned(plan, "aws_s3_bucket_lifecycle_configuration")
    (rule,) = [r for r in lifecycle["rule"] if r["id"] == "rejected-uploads"]
    (tag,) = rule["filter"][0]["tag"]
    assert {"Key": tag["key"], "Value": tag["value"]} == REJECTED_TAG
    assert rule["expiration"][0]["days"] == 7 and rule["status"] == "Enabled"
    (statement,) = [s for _, s in policy_statements() if s.get("sid") == "TagRejectedUploads"]
    assert statement["resources"] == ["${local.bucket_arn}/${var.upload_prefix}*"]


def test_the_api_may_sign_uploads_and_delete_under_the_upload_prefix_only() -> None:
    (statement,) = [
        s for where, s in policy_statements() if s.get("sid") == "PresignUploadsAndDeleteThem"
    ]
    assert sorted(statement["actions"]) == ["s3:DeleteObject", "s3:PutObject"]
    assert statement["resources"] == ["${local.bucket_arn}/${var.upload_prefix}*"]


# --------------------------------------------------------------------- static IAM facts


def policy_statements() -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every aws_iam_policy_document in terraform/ (dynamic ones too)."""
    found = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as handle:
            document = hcl.unquote(hcl2.load(handle))
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
    root = hcl.variable_defaults(TERRAFORM / "variables.tf")
    settings = Settings()
    assert f"{root['project']}-local" == settings.name  # the local stack is environment "local"
    assert root["queue_delay_seconds"] == settings.queue_delay_s
    assert root["queue_max_receive_count"] == settings.queue_max_receive
    assert 6 * root["ingest_timeout_seconds"] == settings.queue_visibility_s
    assert root["upload_url_expiry_seconds"] == settings.upload_url_expiry_s
    # the ingest timeout's floor counts ingest's own wait for one InvokeEndpoint answer
    floor = "var.ingest_timeout_seconds >= 180 + {:g} + var.writer_timeout_seconds"
    variables = (TERRAFORM / "variables.tf").read_text()
    assert floor.format(settings.endpoint_timeout_s) in variables
    assert (
        root["ingest_timeout_seconds"]
        >= 180 + settings.endpoint_timeout_s + root["writer_timeout_seconds"]
    )
    # ingest's decoding budget is a quarter of its memory: the default's is the local one
    with (TERRAFORM / "main.tf").open() as handle:
        modules = hcl.unquote(hcl2.load(handle))["module"]
    (ingest,) = [m["ingest"] for m in modules if "ingest" in m]
    budget = ingest["environment"]["PHOTOCLUSTER_IMAGE_MAX_DECODED_BYTES"]
    assert budget == "${tostring(floor(var.ingest_memory_mb / 4) * 1048576)}"
    assert root["ingest_memory_mb"] // 4 * 2**20 == settings.image_max_decoded_bytes


# --------------------------------------------------------------------- checkov


def test_checkov_has_no_failed_checks() -> None:
    summary, failed = checkov(TERRAFORM, "terraform")
    assert summary["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert summary["passed"] > 300


def test_the_longest_names_allowed_fit_the_shortest_limit_they_feed() -> None:
    """The name validation's limit, plus "-embedder-", is SageMaker's 37-character prefix;
    with the account and the longest region allowed, the uploads bucket's name fits S3's 63."""
    with (TERRAFORM / "main.tf").open() as handle:
        modules = hcl.unquote(hcl2.load(handle))["module"]
    (embedder,) = [m["embedder"] for m in modules if "embedder" in m]
    assert embedder["name"] == "${local.name}-embedder"
    with (TERRAFORM / "modules" / "embedder" / "main.tf").open() as handle:
        resources = hcl.unquote(hcl2.load(handle))["resource"]
    (config,) = [
        r["aws_sagemaker_endpoint_configuration"]
        for r in resources
        if "aws_sagemaker_endpoint_configuration" in r
    ]
    assert config["this"]["name_prefix"] == "${var.name}-"
    text = (TERRAFORM / "variables.tf").read_text()
    found = re.search(r'length\("\$\{var\.project\}-\$\{var\.environment\}"\) <= (\d+)', text)
    assert found is not None, "the combined name validation is gone"
    assert int(found.group(1)) + len("-embedder-") == 37
    # the uploads bucket: "<project>-<environment>-uploads-<account>-<region>", 63 at most
    with (TERRAFORM / "main.tf").open() as handle:
        root_locals = hcl.unquote(hcl2.load(handle))["locals"][0]
    assert root_locals["bucket_name"] == "${local.name}-uploads-${local.account_id}-${var.region}"
    longest_region = re.search(r"length\(var\.region\) <= (\d+)", text)
    assert longest_region is not None, "the region's length is not validated"
    longest = int(found.group(1)) + len("-uploads-") + 12 + 1 + int(longest_region.group(1))
    assert longest <= 63 and len("ap-southeast-4") <= int(longest_region.group(1))


@pytest.mark.parametrize("capture", [True, False])
def test_a_terraform_run_past_its_timeout_stops_cleanly(tmp_path: Path, capture: bool) -> None:
    """make deploy's Terraform runs end at a timeout with SIGINT, Terraform's own way to
    stop: its state is written and its lock released (a killed apply leaves both behind)."""
    (tmp_path / "main.tf").write_text(
        'resource "terraform_data" "slow" {\n'
        '  provisioner "local-exec" {\n    command = "sleep 120"\n  }\n}\n'
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1"}
    runner = Terraform(tmp_path, env, timeout_s=8, grace_s=60)
    runner.init()
    started = time.monotonic()
    with pytest.raises(DeployError, match="stopped cleanly"):
        runner.run("apply", "-input=false", "-auto-approve", capture=capture)
    assert time.monotonic() - started < 60  # it did not wait for the sleep
    assert not (tmp_path / ".terraform.tfstate.lock.info").exists()
    state = json.loads((tmp_path / "terraform.tfstate").read_text())
    (resource,) = state["resources"]  # created, and known to the state (as tainted)
    assert resource["instances"][0]["status"] == "tainted"
